"""``cutout doctor``: the deploy-day and every-day check of a stack, deployed or local; each finding comes with the
command that fixes it.

    cutout --stack cutout doctor          # after `sam deploy` and the README's deploy steps; then from cron
    cutout doctor --json                  # the local stack, for scripts
    cutout --stack cutout doctor --webhook-secret-env WEBHOOK_SECRET   # also compare with Magic Hour's secret

Every check is named and answers ok, warn (worth knowing, nothing is broken yet) or fail (something does not or
will not work). Exit status as ``cutout status``: 0 no check failed, 2 a person is needed (a check failed, or could
not run), 1 an error (no stack, bad arguments).

It spends nothing and leaves nothing behind: the Magic Hour key is tried with a GET of a project that does not
exist (404 with a valid key, 401 with a bad one; no credits), and the webhook gets a signed delivery for a project
that is not a Cutout job's, which the function verifies and then ignores (no table write, no queue message).
Secrets are read with the operator's credentials and never printed.

AWS actions it calls (beyond ``cloudformation:DescribeStacks``): ``lambda:GetAccountSettings``,
``lambda:GetFunctionConcurrency``, ``s3:GetBucketNotificationConfiguration`` (s3:GetBucketNotification),
``s3:GetBucketLocation``, ``s3:GetEncryptionConfiguration``, ``s3:GetObject`` (the first bytes of the default
background), ``kms:DescribeKey``, ``secretsmanager:ListSecretVersionIds``, ``secretsmanager:GetSecretValue`` (both
secrets), ``sns:ListSubscriptionsByTopic``, ``sqs:GetQueueAttributes``, ``cloudwatch:DescribeAlarms``,
``ssm:GetParameter`` (the presets), ``events:ListRuleNamesByTarget`` and ``events:DescribeRule`` (the rule feeding
the renditions queue).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from cutout_dev.ops.doctor.alarms import AlarmChecks
from cutout_dev.ops.doctor.background import BackgroundChecks
from cutout_dev.ops.doctor.base import Check, DoctorContext, access_denied, failure_reason
from cutout_dev.ops.doctor.bucket import BucketChecks
from cutout_dev.ops.doctor.concurrency import ConcurrencyChecks
from cutout_dev.ops.doctor.magic_hour import MagicHourChecks
from cutout_dev.ops.doctor.renditions import RenditionsChecks
from cutout_dev.ops.doctor.stored_secrets import SecretChecks
from cutout_dev.ops.output import EXIT_ATTENTION, EXIT_OK, Output, fields, table
from cutout_dev.ops.target import StackTarget, TargetError, local_state_file


class Doctor:
    """The checks of one stack, by subject (one module each), all on one context: the stack and how its fixes are
    spelled (base.py). Each subject is held, given that context in its constructor."""

    def __init__(
        self,
        target: StackTarget,
        *,
        magic_hour_webhook_secret: str | None = None,
        local_state: dict[str, Any] | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self.ctx = DoctorContext(
            target, magic_hour_webhook_secret=magic_hour_webhook_secret, local_state=local_state, http=http
        )
        concurrency, bucket = ConcurrencyChecks(self.ctx), BucketChecks(self.ctx)
        secrets, magic_hour, alarms = SecretChecks(self.ctx), MagicHourChecks(self.ctx), AlarmChecks(self.ctx)
        self.concurrency = concurrency.concurrency
        self.bucket_events, self.bucket_encryption = bucket.bucket_events, bucket.bucket_encryption
        self.bucket_region = bucket.bucket_region
        self.default_background = BackgroundChecks(self.ctx).default_background
        self.secret_set = secrets.secret_set
        self.magic_hour_key, self.webhook = magic_hour.magic_hour_key, magic_hour.webhook
        self.alarm_subscription, self.dlqs, self.alarms = alarms.alarm_subscription, alarms.dlqs, alarms.alarms
        renditions = RenditionsChecks(self.ctx)
        self.presets, self.renditions_queue = renditions.presets, renditions.renditions_queue

    def run(self) -> list[Check]:
        checks: list[tuple[str, Callable[[], Check | list[Check]]]] = [
            ("concurrency", self.concurrency),
            ("bucket-events", self.bucket_events),
            ("bucket-region", self.bucket_region),
            ("bucket-encryption", self.bucket_encryption),
            ("default-background", self.default_background),
            ("api-key-set", lambda: self.secret_set("api-key-set", "ApiKeySecret", "$MAGIC_HOUR_API_KEY")),
            ("webhook-secret-set", lambda: self.secret_set("webhook-secret-set", "WebhookSecret", "$WEBHOOK_SECRET")),
            ("magic-hour-key", self.magic_hour_key),
            ("webhook", self.webhook),
            ("presets", self.presets),
            ("renditions-queue", self.renditions_queue),
            ("alarm-subscription", self.alarm_subscription),
            ("dlqs", self.dlqs),
            ("alarms", self.alarms),
        ]
        results: list[Check] = []
        for name, check in checks:
            try:
                found = check()
            except (ClientError, BotoCoreError, requests.RequestException, TargetError, KeyError, ValueError) as exc:
                denied = isinstance(exc, ClientError) and access_denied(exc)
                found = Check(
                    name,
                    "fail",
                    f"could not check: {failure_reason(exc)}",
                    "# grant the operator the actions `cutout doctor --help` lists, then run it again"
                    if denied
                    else None,
                )
            results.extend(found if isinstance(found, list) else [found])
        return results


def summary(checks: Iterable[Check]) -> dict[str, int]:
    counts = {"ok": 0, "warn": 0, "fail": 0}
    for check in checks:
        counts[check.status] += 1
    return counts


def collect(target: StackTarget, *, magic_hour_webhook_secret: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if target.local:
        path = local_state_file()
        if path.exists():
            state = json.loads(path.read_text(encoding="utf-8"))
    checks = Doctor(target, magic_hour_webhook_secret=magic_hour_webhook_secret, local_state=state).run()
    counts = summary(checks)
    return {
        "stack": target.stack_name,
        "local": target.local,
        "healthy": counts["fail"] == 0,
        "counts": counts,
        "checks": [c.to_dict() for c in checks],
    }


MARKS = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


def draw(result: dict[str, Any], console: Any) -> None:
    where = "local stack" if result["local"] else "deployed stack"
    counts = result["counts"]
    console.print(
        fields(
            [
                ("Stack", f"{result['stack']} ({where})"),
                ("Checks", f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail"),
            ]
        )
    )
    console.print()
    console.print(
        table(
            None,
            ("check", "status", "detail"),
            [(c["name"], MARKS[c["status"]], c["detail"]) for c in result["checks"]],
        )
    )
    fixes = [c for c in result["checks"] if c["fix"] and c["status"] != "ok"]
    if fixes:
        console.print()
        console.print("Fix:", style="bold")
        for check in fixes:
            console.print(f"  {check['name']}:", markup=False)
            for line in str(check["fix"]).splitlines():
                console.print(f"    {line}", markup=False, soft_wrap=True)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="deploy-day and every-day checks, each finding with its fix (exit 2: a check failed)",
        description=(
            "Checks a stack: Lambda concurrency quota vs reservations, the bucket's EventBridge notifications, "
            "region and encryption, secrets still at their placeholders, the Magic Hour key (no credits spent), a "
            "signed webhook delivery, the stored presets and the renditions queue, the alarm subscription, DLQs and "
            "alarms. Calls lambda:GetAccountSettings, "
            "lambda:GetFunctionConcurrency, s3:GetBucketNotification, s3:GetBucketLocation, "
            "s3:GetEncryptionConfiguration, "
            "kms:DescribeKey, secretsmanager:ListSecretVersionIds, secretsmanager:GetSecretValue, "
            "sns:ListSubscriptionsByTopic, sqs:GetQueueAttributes, cloudwatch:DescribeAlarms, ssm:GetParameter, "
            "events:ListRuleNamesByTarget, events:DescribeRule."
        ),
    )
    parser.add_argument(
        "--webhook-secret-env",
        metavar="VAR",
        default=None,
        help="environment variable holding the signing secret Magic Hour shows: compare it with the stored one "
        "(never on the command line: it would stay in the shell history)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, target: StackTarget) -> int:
    theirs = None
    if args.webhook_secret_env:
        theirs = os.environ.get(args.webhook_secret_env) or None
        if theirs is None:
            raise TargetError(f"--webhook-secret-env {args.webhook_secret_env}: that variable is not set")
    result = collect(target, magic_hour_webhook_secret=theirs)
    Output.from_args(args).emit(result, lambda console: draw(result, console))
    return EXIT_OK if result["healthy"] else EXIT_ATTENTION


__all__ = ["Check", "Doctor", "add_parser", "collect", "draw", "run", "summary"]
