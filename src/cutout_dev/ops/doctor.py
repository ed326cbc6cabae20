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
``s3:GetEncryptionConfiguration``, ``kms:DescribeKey``, ``secretsmanager:ListSecretVersionIds``,
``secretsmanager:GetSecretValue`` (both secrets), ``sns:ListSubscriptionsByTopic``, ``sqs:GetQueueAttributes``,
``cloudwatch:DescribeAlarms``.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import secrets
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from botocore.exceptions import BotoCoreError, ClientError

from cutout_dev.ops.output import EXIT_ATTENTION, EXIT_OK, Output, fields, table
from cutout_dev.ops.status import alarms_firing, queue_depth
from cutout_dev.ops.target import FUNCTIONS, StackTarget, TargetError, local_state_file

Status = Literal["ok", "warn", "fail"]

# The template's parameter for the webhook function's reserved concurrency (0 = none).
RESERVATION_PARAMETER = "WebhookReservedConcurrency"
# "Lambda quotas": the account's concurrent executions quota (Service Quotas code of "Concurrent executions").
CONCURRENCY_QUOTA_CODE = "L-B99A9384"
# AWS keeps this many executions unreserved (fewer on accounts whose whole quota is smaller): "Configuring reserved
# concurrency for a function" (Lambda Developer Guide) - a reservation that would leave less is refused.
UNRESERVED_MINIMUM = 100
LOCAL_DEFAULT_QUOTA = 1000  # LocalStackConfig.account_concurrency_quota's default
DEFAULT_MAGIC_HOUR_URL = "https://api.magichour.ai"
HTTP_TIMEOUT_SECONDS = 10.0
# Read for the Magic Hour key check: an id no project has (GET answers 404 to a valid key, 401 to any other).
PROBE_PROJECT_ID = "cutout-doctor-probe-no-such-project"
# The webhook function caches its secret this long (cutout.aws.secrets.SECRET_MAX_AGE_SECONDS; not imported: the
# shared layer's secrets module loads Powertools).
SECRET_CACHE_SECONDS = 300
ACCEPTED = 202  # cutout.use_cases.webhook answers it to every authentic, well-formed delivery (not imported, as above)
SIGNATURE_HEADER = "magic-hour-event-signature"  # cutout.magic_hour.webhook_auth, magichour-api.md §5
TIMESTAMP_HEADER = "magic-hour-event-timestamp"


@dataclass(frozen=True)
class Check:
    """One finding: ``fix`` is the command (one per line) that makes it ok; None when ok."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


class Doctor:
    """The checks of one stack, and how its fixes are spelled (AWS CLI and ``cutout`` commands for this target)."""

    def __init__(
        self,
        target: StackTarget,
        *,
        magic_hour_webhook_secret: str | None = None,
        local_state: dict[str, Any] | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self.target = target
        self.magic_hour_webhook_secret = magic_hour_webhook_secret
        self.local_state = local_state or {}
        self.http = http or requests.Session()

    # -- how the fixes are spelled -------------------------------------------------------------------------------
    @property
    def aws(self) -> str:
        """The AWS CLI as this target needs it (moto accepts any credentials, but the AWS CLI wants some)."""
        if self.target.local:
            return f"AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --endpoint-url {self.target.endpoint_url}"
        words = ["aws"]
        profile = self.target.session.profile_name
        if profile and profile != "default":
            words += ["--profile", profile]
        words += ["--region", self.target.region]
        return " ".join(shlex.quote(w) for w in words)

    @property
    def cutout(self) -> str:
        if self.target.local:
            return "cutout"
        words = ["cutout", "--stack", self.target.stack_name]
        profile = self.target.session.profile_name
        if profile and profile != "default":
            words += ["--profile", profile]
        words += ["--region", self.target.region]
        return " ".join(shlex.quote(w) for w in words)

    def redeploy(self, **overrides: str) -> str:
        """Change a template parameter: ``sam deploy`` on AWS, a restart with ``--param`` locally."""
        if self.target.local:
            return " ".join(["cutout local up", *(f"--param {k}={v}" for k, v in overrides.items())])
        command = f".tools/sam/bin/sam deploy --stack-name {shlex.quote(self.target.stack_name)}"
        if not overrides:
            return command
        # --parameter-overrides replaces every override saved in samconfig.toml (README, Operate): repeat those.
        return command + " --parameter-overrides " + " ".join(f"{k}={v}" for k, v in overrides.items())

    def put_secret(self, logical_id: str, variable: str) -> str:
        """The README's deploy step 4 for one secret."""
        secret_id = shlex.quote(self._secret_id(logical_id))
        fix = f'{self.aws} secretsmanager put-secret-value --secret-id {secret_id} --secret-string "{variable}"'
        if variable == "$WEBHOOK_SECRET":
            fix += f"   # {self._webhook_secret_source()}"
        elif self.target.local:
            fix += f'   # locally: "$(curl -s {self.magic_hour_url}/_emulator/config | jq -r .api_key)"'
        return fix

    def run(self) -> list[Check]:
        checks: list[tuple[str, Callable[[], Check | list[Check]]]] = [
            ("concurrency", self.concurrency),
            ("bucket-events", self.bucket_events),
            ("bucket-encryption", self.bucket_encryption),
            ("api-key-set", lambda: self.secret_set("api-key-set", "ApiKeySecret", "$MAGIC_HOUR_API_KEY")),
            ("webhook-secret-set", lambda: self.secret_set("webhook-secret-set", "WebhookSecret", "$WEBHOOK_SECRET")),
            ("magic-hour-key", self.magic_hour_key),
            ("webhook", self.webhook),
            ("alarm-subscription", self.alarm_subscription),
            ("dlqs", self.dlqs),
            ("alarms", self.alarms),
        ]
        results: list[Check] = []
        for name, check in checks:
            try:
                found = check()
            except (ClientError, BotoCoreError, requests.RequestException, TargetError, KeyError, ValueError) as exc:
                denied = isinstance(exc, ClientError) and _denied(exc)
                found = Check(
                    name,
                    "fail",
                    f"could not check: {_reason(exc)}",
                    "# grant the operator the actions `cutout doctor --help` lists, then run it again"
                    if denied
                    else None,
                )
            results.extend(found if isinstance(found, list) else [found])
        return results

    # -- Lambda concurrency ----------------------------------------------------------------------------------------
    def concurrency(self) -> Check:
        """The account's concurrency quota against what the stack reserves, as AWS will judge the next deploy."""
        if self.target.local:
            quota = int(self.local_state.get("account_concurrency_quota") or LOCAL_DEFAULT_QUOTA)
            reserved = self._template_reservations()
            unreserved = quota - sum(reserved.values())
            where = "reservations from the template, quota from the local stack"
        else:
            lam = self.target.client("lambda")
            limits = lam.get_account_settings()["AccountLimit"]
            quota = int(limits["ConcurrentExecutions"])
            unreserved = int(limits["UnreservedConcurrentExecutions"])
            reserved = {}
            for fn in FUNCTIONS:
                name = self.target.outputs.get(f"{fn}FunctionName")
                if name:
                    answer = lam.get_function_concurrency(FunctionName=name)
                    if answer.get("ReservedConcurrentExecutions") is not None:
                        reserved[fn] = int(answer["ReservedConcurrentExecutions"])
            where = "Lambda GetAccountSettings, GetFunctionConcurrency"
        minimum = min(quota, UNRESERVED_MINIMUM)
        ours = sum(reserved.values())
        others = max(0, quota - unreserved - ours)  # reserved by the account's other functions
        allowed = quota - others - minimum  # most this stack may reserve in all
        spelled = ", ".join(f"{fn} {n}" for fn, n in reserved.items()) or "none"
        detail = (
            f"quota {quota}, unreserved {unreserved} (AWS keeps {minimum}); this stack reserves {ours} ({spelled}), "
            f"other functions {others} ({where})"
        )
        if ours > allowed:
            fix = self.redeploy(**{RESERVATION_PARAMETER: "0"})
            if not self.target.local:
                fix += (
                    f"\n# or raise the quota: {self.aws} service-quotas request-service-quota-increase "
                    f"--service-code lambda --quota-code {CONCURRENCY_QUOTA_CODE} --desired-value 1000"
                )
            return Check(
                "concurrency",
                "fail",
                f"{detail}: at most {max(0, allowed)} can be reserved, so deploys and updates are refused "
                '("decreases account\'s UnreservedConcurrentExecution below its minimum value")',
                fix,
            )
        return Check("concurrency", "ok", detail)

    def _template_reservations(self) -> dict[str, int]:
        """Reserved concurrency per function, as the stack's template and parameters set it (the local stack has
        no Lambda service to ask)."""
        from pathlib import Path

        from cutout_dev.local_stack.cfn_yaml import load_template
        from cutout_dev.local_stack.intrinsics import NO_VALUE, IntrinsicResolver, UnresolvableError
        from cutout_dev.local_stack.stack import PROJECT_ROOT

        template = load_template(Path(self.local_state.get("template") or PROJECT_ROOT / "template.yaml"))

        def no_resource(*args: str) -> Any:
            raise UnresolvableError(f"a reservation that depends on a resource ({args}) is not modelled")

        resolver = IntrinsicResolver(
            template,
            self.target.parameters,
            region=self.target.region,
            stack_name=self.target.stack_name,
            ref=no_resource,
            get_att=no_resource,
        )
        default = ((template.get("Globals") or {}).get("Function") or {}).get("ReservedConcurrentExecutions")
        reserved: dict[str, int] = {}
        for logical_id, res in (template.get("Resources") or {}).items():
            if res.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                continue
            if res.get("Condition") and not resolver.condition(str(res["Condition"])):
                continue
            value = resolver.resolve((res.get("Properties") or {}).get("ReservedConcurrentExecutions", default))
            if value is None or value is NO_VALUE:
                continue
            reserved[str(logical_id).removesuffix("Function")] = int(value)
        return reserved

    # -- the bucket --------------------------------------------------------------------------------------------
    def bucket_events(self) -> Check:
        bucket = self.target.bucket
        config = self.target.client("s3").get_bucket_notification_configuration(Bucket=bucket)
        if "EventBridgeConfiguration" in config:
            return Check("bucket-events", "ok", f"s3://{bucket} sends its events to EventBridge")
        others = [
            k for k in ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations") if config.get(k)
        ]
        put = f"{self.aws} s3api put-bucket-notification-configuration --bucket {shlex.quote(bucket)}"
        if others:
            # PutBucketNotificationConfiguration replaces the whole configuration ("Amazon S3 API Reference"):
            # merge, or the bucket's other notifications are lost.
            fix = (
                f"{self.aws} s3api get-bucket-notification-configuration --bucket {shlex.quote(bucket)} > notif.json\n"
                "jq '. + {\"EventBridgeConfiguration\": {}}' notif.json > notif-eb.json\n"
                f"{put} --notification-configuration file://notif-eb.json"
            )
        else:
            fix = f"{put} --notification-configuration '{{\"EventBridgeConfiguration\": {{}}}}'"
        kept = f" (it keeps {', '.join(others)}: merge, the call replaces them all)" if others else ""
        return Check(
            "bucket-events",
            "fail",
            f"s3://{bucket} does not send events to EventBridge: uploads start no job{kept}",
            fix,
        )

    def bucket_encryption(self) -> list[Check]:
        buckets = dict.fromkeys([self.target.bucket, self.target.output_bucket])
        return [self._encryption(bucket, len(buckets) > 1) for bucket in buckets]

    def _encryption(self, bucket: str, several: bool) -> Check:
        name = f"bucket-encryption:{bucket}" if several else "bucket-encryption"
        s3 = self.target.client("s3")
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            # "Setting default server-side encryption behavior for Amazon S3 buckets": every bucket encrypts new
            # objects with SSE-S3 when nothing else is configured.
            return Check(name, "ok", f"s3://{bucket}: no default encryption configured (S3 applies SSE-S3)")
        default = (rules[0] if rules else {}).get("ApplyServerSideEncryptionByDefault") or {}
        algorithm = str(default.get("SSEAlgorithm") or "AES256")
        key = default.get("KMSMasterKeyID")
        if not algorithm.startswith("aws:kms"):
            return Check(name, "ok", f"s3://{bucket}: {algorithm} (S3 managed keys)")
        if not key:
            return Check(name, "ok", f"s3://{bucket}: {algorithm} with the AWS managed key aws/s3")
        meta = self.target.client("kms").describe_key(KeyId=str(key))["KeyMetadata"]
        if meta.get("KeyManager") == "AWS":
            return Check(name, "ok", f"s3://{bucket}: {algorithm} with an AWS managed key")
        arn = str(meta.get("Arn") or key)
        given = self.target.parameters.get("BucketKmsKeyArn", "")
        if given and self._same_key(given, arn):
            return Check(name, "ok", f"s3://{bucket}: {algorithm} with {arn}, given to the stack (BucketKmsKeyArn)")
        told = f"the stack was given {given}" if given else "the stack was not given it (BucketKmsKeyArn is empty)"
        return Check(
            name,
            "fail",
            f"s3://{bucket}: {algorithm} with the customer managed key {arn}; {told}: the functions cannot read "
            "uploads or write cutouts without kms:Decrypt / kms:GenerateDataKey on it",
            self.redeploy(BucketKmsKeyArn=arn),
        )

    def _same_key(self, given: str, arn: str) -> bool:
        if given == arn:
            return True
        try:  # an alias or key id given for the key's ARN
            return str(self.target.client("kms").describe_key(KeyId=given)["KeyMetadata"].get("Arn")) == arn
        except ClientError:
            return False

    # -- secrets ---------------------------------------------------------------------------------------------------
    def _secret_id(self, logical_id: str) -> str:
        return self.target.outputs.get(f"{logical_id}Name") or self.target.output(f"{logical_id}Arn")

    def secret_set(self, name: str, logical_id: str, variable: str) -> Check:
        """A secret still at its generated placeholder: its current version is the one it was created with.

        CloudFormation creates the secret with one version, its GenerateSecretString value; the README's deploy
        steps put the real value with put-secret-value, a new version that takes the AWSCURRENT label
        ("Secrets Manager: secret versions and staging labels"). So the value was set iff AWSCURRENT is on a
        later version than the first (a roll-back of the label to the first version counts as not set).
        """
        secret_id = self._secret_id(logical_id)
        sm = self.target.client("secretsmanager")
        versions: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": True}
        while True:  # botocore has no paginator for it
            page = sm.list_secret_version_ids(**kwargs)
            versions.extend(page.get("Versions", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        # Oldest first by CreatedDate; moto stamps every version with the time of the call, and lists them in
        # the order they were made, so the listing order breaks ties.
        ordered = [v for _, v in sorted(enumerate(versions), key=lambda iv: (_epoch(iv[1].get("CreatedDate")), iv[0]))]
        current = next((v for v in ordered if "AWSCURRENT" in v.get("VersionStages", [])), None)
        fix = self.put_secret(logical_id, variable)
        if current is None:
            return Check(name, "fail", f"{secret_id} has no current value", fix)
        if current is ordered[0]:
            return Check(
                name,
                "fail",
                f"{secret_id} is still at the placeholder it was created with ({len(versions)} version(s), the "
                "current one is the first): it was never put",
                fix,
            )
        return Check(name, "ok", f"{secret_id} was put after it was created ({len(versions)} versions)")

    def _secret_value(self, logical_id: str) -> str:
        """The secret as the functions read it (a bare value, or a JSON object with one obvious field)."""
        # AWSCURRENT is GetSecretValue's default on AWS; named, because moto answers with the version the secret was
        # last put with even after UpdateSecretVersionStage moved the label.
        sm = self.target.client("secretsmanager")
        raw = sm.get_secret_value(SecretId=self._secret_id(logical_id), VersionStage="AWSCURRENT")
        text = str(raw.get("SecretString") or "").strip()
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                for field in ("api_key", "apiKey", "secret", "webhook_secret", "value"):
                    if isinstance(doc.get(field), str):
                        return str(doc[field])
        return text

    @property
    def magic_hour_url(self) -> str:
        return (self.target.parameters.get("MagicHourBaseUrl") or DEFAULT_MAGIC_HOUR_URL).rstrip("/")

    # -- Magic Hour ------------------------------------------------------------------------------------------------
    def magic_hour_key(self) -> Check:
        """The stored key, tried with a call that spends no credits: GET of a project id that does not exist."""
        key = self._secret_value("ApiKeySecret")
        url = f"{self.magic_hour_url}/v1/image-projects/{PROBE_PROJECT_ID}"
        fix = self.put_secret("ApiKeySecret", "$MAGIC_HOUR_API_KEY")
        try:
            resp = self.http.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=HTTP_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            return Check("magic-hour-key", "fail", f"{self.magic_hour_url} cannot be reached: {_reason(exc)}")
        where = f"GET {self.magic_hour_url}/v1/image-projects/<no such id>"
        if resp.status_code == 404:
            return Check("magic-hour-key", "ok", f"the stored key is accepted ({where}: 404, no credits spent)")
        if resp.status_code == 401:
            return Check("magic-hour-key", "fail", f"Magic Hour refuses the stored key ({where}: 401)", fix)
        if resp.status_code in (402, 403):
            return Check(
                "magic-hour-key",
                "fail",
                f"the key is known but the account cannot create ({where}: {resp.status_code} {_message(resp)})",
                "# top up credits or the plan in Magic Hour's dashboard",
            )
        return Check(
            "magic-hour-key", "warn", f"{where}: {resp.status_code} {_message(resp)} (try again in a minute)", None
        )

    def _webhook_secret_source(self) -> str:
        if self.target.local:
            return f'locally: "$(curl -s {self.magic_hour_url}/_emulator/config | jq -r .webhook_secret)"'
        return "the signing secret Magic Hour's Developer Hub shows for the webhook"

    def _magic_hour_signing_secret(self) -> str | None:
        """What Magic Hour signs with, when the doctor can know it: given by the operator, or (locally) the
        emulator's (its loopback control API says; real Magic Hour has no such call)."""
        if self.magic_hour_webhook_secret:
            return self.magic_hour_webhook_secret
        host = urlsplit(self.magic_hour_url).hostname or ""
        if not self.target.local or host not in ("127.0.0.1", "localhost", "::1"):
            return None  # real Magic Hour (`cutout local up --real-magic-hour`) has no control API to ask
        try:
            resp = self.http.get(f"{self.magic_hour_url}/_emulator/config", timeout=HTTP_TIMEOUT_SECONDS)
            secret = resp.json().get("webhook_secret") if resp.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError):
            return None
        return str(secret) if secret else None

    def webhook(self) -> Check:
        """A signed delivery for a project that is not a Cutout job's: 202 (what Cutout's webhook answers every
        authentic delivery, ignored ones too) proves the URL, its permission and the secret agree. Sent signed with
        Magic Hour's secret when known (so it is what Magic Hour would get)."""
        url = self.target.output("WebhookUrl")
        stored = self._secret_value("WebhookSecret")
        theirs = self._magic_hour_signing_secret()
        signer = theirs or stored
        body = json.dumps({"type": "image.completed", "payload": _probe_project()}, separators=(",", ":"))
        stamp = str(int(time.time()))
        signature = hmac.new(signer.encode(), f"{stamp}.{body}".encode(), "sha256").hexdigest()
        fix = self.put_secret("WebhookSecret", "$WEBHOOK_SECRET")
        try:
            resp = self.http.post(
                url,
                data=body.encode(),
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: stamp},
                timeout=HTTP_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return Check(
                "webhook",
                "fail",
                f"{url} cannot be reached: {_reason(exc)}",
                f"{self.redeploy()}   # re-creates the Function URL; register the new WebhookUrl output in Magic Hour",
            )
        signed_with = "Magic Hour's signing secret" if theirs else "the stored secret"
        answered = f"a delivery signed with {signed_with} got {resp.status_code}"
        if theirs is not None and not hmac.compare_digest(theirs.encode(), stored.encode()):
            cached = f" (the functions cache it up to {SECRET_CACHE_SECONDS // 60} min)" if resp.ok else ""
            return Check(
                "webhook",
                "fail",
                f"the stored webhook secret is not the one Magic Hour signs with: its deliveries are refused (401) "
                f"once the functions read the stored one{cached}; {answered}",
                fix,
            )
        if resp.status_code == ACCEPTED:
            compared = "" if theirs else " (not compared with Magic Hour's: --webhook-secret-env VAR does)"
            return Check("webhook", "ok", f"{url}: {answered}{compared}")
        if resp.ok:
            # Magic Hour would count it delivered, but Cutout's webhook answers 202 to every signed delivery: this
            # URL fronts something else (a proxy, an older or another function).
            return Check(
                "webhook",
                "fail",
                f"{answered}, not the {ACCEPTED} Cutout's webhook gives a signed delivery: {url} does not reach it",
                f"{self.redeploy()}   # then register the stack's WebhookUrl output in Magic Hour",
            )
        if resp.status_code == 401:
            detail = (
                f"{answered}: the function verifies with another secret than {signed_with} (a value put less than "
                f"{SECRET_CACHE_SECONDS // 60} min ago is picked up when its cache expires)"
            )
            return Check("webhook", "fail", detail, fix)
        if resp.status_code == 403:
            # "Control access to Lambda function URLs": AuthType NONE needs lambda:InvokeFunctionUrl (and, since
            # 2025, lambda:InvokeFunction) in the function's resource policy; SAM's FunctionUrlConfig adds both.
            return Check(
                "webhook",
                "fail",
                f"{answered}: the Function URL's resource policy does not let the public invoke it",
                f"{self.redeploy()}   # restores the permissions SAM's FunctionUrlConfig adds",
            )
        if resp.status_code == 429:
            return Check(
                "webhook",
                "warn",
                f"{answered}: the webhook's reserved concurrency is exhausted right now (Magic Hour retries)",
            )
        logs = self.target.log_groups.get("Webhook", f"/aws/lambda/{self.target.stack_name}/webhook")
        return Check(
            "webhook", "fail", f"{answered} {_message(resp)}", f"{self.aws} logs tail {shlex.quote(logs)} --since 15m"
        )

    # -- alarms, DLQs ---------------------------------------------------------------------------------------
    def alarm_subscription(self) -> Check:
        topic = self.target.output("AlarmTopicArn")
        subscriptions: list[dict[str, Any]] = []
        pages = self.target.client("sns").get_paginator("list_subscriptions_by_topic")
        for page in pages.paginate(TopicArn=topic):
            subscriptions.extend(page.get("Subscriptions", []))
        pending = [s for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"]
        if pending:
            endpoints = ", ".join(f"{s.get('Protocol')} {s.get('Endpoint')}" for s in pending)
            resend = "\n".join(
                f"{self.aws} sns subscribe --topic-arn {shlex.quote(topic)} "
                f"--protocol {shlex.quote(str(s.get('Protocol')))} "
                f"--notification-endpoint {shlex.quote(str(s.get('Endpoint')))}"
                for s in pending
            )
            return Check(
                "alarm-subscription",
                "fail",
                f'not confirmed: {endpoints} (SNS delivers nothing until the link in the "AWS Notification - '
                'Subscription Confirmation" mail is clicked)',
                f"# click the link in that mail; to have it sent again:\n{resend}",
            )
        if not subscriptions:
            return Check(
                "alarm-subscription",
                "warn",
                "nobody is subscribed to the alarm topic: alarms are seen only by `cutout status`",
                self.redeploy(AlarmEmail="you@example.com")
                if not self.target.local
                else f"{self.aws} sns subscribe --topic-arn {shlex.quote(topic)} --protocol email "
                "--notification-endpoint you@example.com",
            )
        confirmed = ", ".join(f"{s.get('Protocol')} {s.get('Endpoint')}" for s in subscriptions)
        return Check("alarm-subscription", "ok", f"{len(subscriptions)} confirmed: {confirmed}")

    def dlqs(self) -> Check:
        depths = {name: queue_depth(self.target, ref.url) for name, ref in self.target.dead_letter_queues.items()}
        spelled = "  ".join(f"{name} {n}" for name, n in depths.items())
        full = [name for name, n in depths.items() if n]
        if not full:
            return Check("dlqs", "ok", f"empty: {spelled}")
        return Check(
            "dlqs",
            "fail",
            f"{spelled}: messages the pipeline gave up on (look at `{self.cutout} jobs --status error --since 1d` "
            "and fix the cause first)",
            "\n".join(f"{self.cutout} redrive {name}" for name in full),
        )

    def alarms(self) -> Check:
        firing = alarms_firing(self.target)
        if not firing:
            return Check("alarms", "ok", f"none of the stack's alarms ({self.target.alarm_prefix}*) is in ALARM")
        spelled = "; ".join(f"{a['name']}: {a['reason']}" for a in firing)
        return Check(
            "alarms",
            "fail",
            f"in ALARM: {spelled}",
            "\n".join(
                [f"{self.cutout} status"]
                + [
                    f"{self.aws} cloudwatch describe-alarm-history --alarm-name {shlex.quote(a['name'])} "
                    "--history-item-type StateUpdate --max-items 5"
                    for a in firing
                ]
            ),
        )


def _probe_project() -> dict[str, Any]:
    """A GET /v1/image-projects/{id}-shaped payload whose name is no Cutout job's (``cutout:<job id>``): the
    receiver verifies the signature, then ignores it."""
    return {
        "id": f"cutout-doctor-{secrets.token_hex(8)}",
        "name": "cutout doctor probe (not a Cutout job)",
        "status": "complete",
        "image_count": 0,
        "type": "BACKGROUND_REMOVER",
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "enabled": True,
        "credits_charged": 0,
        "total_frame_cost": 0,
        "downloads": [],
        "error": None,
    }


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "")[:200]
    return ""


def _denied(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return "AccessDenied" in code or code in (
        "UnauthorizedOperation",
        "AuthorizationError",
        "AuthorizationErrorException",
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"[:300]


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
            "Checks a stack: Lambda concurrency quota vs reservations, the bucket's EventBridge notifications and "
            "encryption, secrets still at their placeholders, the Magic Hour key (no credits spent), a signed "
            "webhook delivery, the alarm subscription, DLQs and alarms. Calls lambda:GetAccountSettings, "
            "lambda:GetFunctionConcurrency, s3:GetBucketNotification, s3:GetEncryptionConfiguration, "
            "kms:DescribeKey, secretsmanager:ListSecretVersionIds, secretsmanager:GetSecretValue, "
            "sns:ListSubscriptionsByTopic, sqs:GetQueueAttributes, cloudwatch:DescribeAlarms."
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
