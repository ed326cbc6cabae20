"""``cutout doctor`` against the local stack (template.yaml in moto, the real handlers, the emulator over HTTP).

Given a healthy stack every check is ok and the exit status is 0; then each problem an operator meets on deploy day
or later is made for real (through the AWS APIs, as it would happen) and must be found, with its fix, and exit 2:
bucket notifications off, a secret still at its placeholder, a webhook secret that is not Magic Hour's, a message
in a DLQ, a reservation above what the account's concurrency quota allows. Each test puts the stack back.

Transcripts: ``CUTOUT_DOCTOR_TRANSCRIPTS=docs/doctor-transcripts.md .venv/bin/python -m pytest
tests/e2e/test_ops_doctor.py`` rewrites docs/doctor-transcripts.md from these runs (text and --json output).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cutout_dev import cli, local_cli
from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.local_stack.cfn_yaml import load_template
from cutout_dev.local_stack.stack import PROJECT_ROOT

CHECKS = [
    "concurrency",
    "bucket-events",
    "bucket-region",
    "bucket-encryption",
    "default-background",
    "api-key-set",
    "webhook-secret-set",
    "magic-hour-key",
    "webhook",
    "presets",
    "renditions-queue",
    "alarm-subscription",
    "dlqs",
    "alarms",
]
TRANSCRIPTS = os.environ.get("CUTOUT_DOCTOR_TRANSCRIPTS")
_recorded: list[tuple[str, str, int, str, int, str]] = []


def _parameters() -> dict[str, str]:
    # The webhook reserves concurrency: on a template with the WebhookReservedConcurrency parameter (0 = none by
    # default) the stack asks for 3, as a deployment that caps the public URL would; older templates reserve
    # MaxJobsInFlight (3) anyway. Either way there is a reservation for a small quota to refuse.
    template = load_template(PROJECT_ROOT / "template.yaml")
    return {"WebhookReservedConcurrency": "3"} if "WebhookReservedConcurrency" in template["Parameters"] else {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = LocalStackConfig(
        function_log=tmp_path_factory.mktemp("doctor") / "functions.log",  # stdout is the CLI's, parsed here
        real_magic_hour=False,
        emulator={"queue_seconds": 0.05, "render_seconds": 0.2},
        schedule_interval_seconds=0,
        parameters=_parameters(),
    )
    with LocalStack(config) as running:
        # An operator who subscribed to the alarm topic (moto confirms SQS subscriptions at once; the local stack
        # creates no e-mail subscription).
        topic = running.endpoints.stack_outputs["AlarmTopicArn"]
        sqs = running.client("sqs")
        alerts = sqs.create_queue(QueueName="ops-alerts")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=alerts, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        running.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        yield running
    if TRANSCRIPTS:
        _write_transcripts(Path(TRANSCRIPTS))


@pytest.fixture
def local_state(stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What ``cutout local up`` writes, in a temp file (never the checkout's .local-stack/)."""
    state = tmp_path / "endpoints.json"
    monkeypatch.setenv("CUTOUT_LOCAL_STACK_FILE", str(state))
    local_cli.write_state(stack)
    return state


def _cli_lines(out: str) -> str:
    """Stdout without the functions' one-line EMF JSON (see test_ops_cli)."""
    return "\n".join(line for line in out.splitlines() if not line.startswith('{"'))


def doctor(capsys: pytest.CaptureFixture[str], scenario: str) -> tuple[int, dict[str, Any]]:
    """Run ``cutout doctor`` twice (text, then --json); return the exit status and the JSON by check name."""
    code_text = cli.main(["doctor"])
    text = _cli_lines(capsys.readouterr().out)
    code = cli.main(["doctor", "--json"])
    raw = _cli_lines(capsys.readouterr().out)
    result = json.loads(raw)
    assert code == code_text
    assert [c["name"] for c in result["checks"]] == CHECKS
    if TRANSCRIPTS:
        _recorded.append((scenario, "cutout doctor", code_text, text, code, raw))
    return code, {c["name"]: c for c in result["checks"]}


def failing(checks: dict[str, Any]) -> set[str]:
    return {name for name, c in checks.items() if c["status"] != "ok"}


def test_a_healthy_stack_passes_every_check(local_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = doctor(capsys, "Healthy local stack")

    assert code == 0
    assert failing(checks) == set()
    assert "this stack reserves 3 (Webhook 3)" in checks["concurrency"]["detail"]
    # The signed probe for a project no job has is answered 202: URL, permission and secret agree
    assert "a delivery signed with Magic Hour's signing secret got 202" in checks["webhook"]["detail"]
    assert "quota 1000" in checks["concurrency"]["detail"]
    assert "404" in checks["magic-hour-key"]["detail"]  # the probe GET: a valid key, nothing spent
    assert "Magic Hour's signing secret" in checks["webhook"]["detail"]
    assert "no renditions, no extra cost" in checks["presets"]["detail"]  # the template stores `{}`
    assert "fed by" in checks["renditions-queue"]["detail"]
    assert all(c["fix"] is None for c in checks.values())


def test_bucket_notifications_off_are_found_with_the_put_command(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = stack.client("s3")
    bucket = stack.endpoints.bucket
    # Given the bucket's EventBridge notifications turned off (as on an existing bucket nobody configured)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        code, checks = doctor(capsys, "Bucket notifications off")

        assert code == 2
        assert failing(checks) == {"bucket-events"}
        fix = checks["bucket-events"]["fix"]
        assert f"s3api put-bucket-notification-configuration --bucket {bucket}" in fix
        assert """--notification-configuration '{"EventBridgeConfiguration": {}}'""" in fix
        assert f"--endpoint-url {stack.endpoints.aws}" in fix  # runnable against this stack as printed
    finally:
        # The fix, applied
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    code, checks = doctor(capsys, "Bucket notifications on again (after the fix)")
    assert code == 0


def test_a_customer_kms_key_the_stack_was_not_given_is_found_with_the_parameter_to_set(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = stack.client("s3")
    bucket = stack.endpoints.bucket
    key = stack.client("kms").create_key(Description="photos")["KeyMetadata"]["Arn"]
    # Given the bucket's default encryption switched to SSE-KMS with a customer managed key
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]
        },
    )
    try:
        code, checks = doctor(capsys, "Bucket encrypted with a customer KMS key the stack was not given")

        assert code == 2
        assert failing(checks) == {"bucket-encryption"}
        assert key in checks["bucket-encryption"]["detail"]
        assert checks["bucket-encryption"]["fix"] == f"cutout local up --param BucketKmsKeyArn={key}"
    finally:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )


def test_a_secret_at_its_placeholder_is_found_and_its_key_is_refused(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sm = stack.client("secretsmanager")
    secret_id = stack.endpoints.stack_outputs["ApiKeySecretName"]
    versions = sm.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)["Versions"]
    current = next(v["VersionId"] for v in versions if "AWSCURRENT" in v["VersionStages"])
    first = next(v["VersionId"] for v in versions if v["VersionId"] != current)
    # Given the API key back at the value CloudFormation generated (the current label moved to the first version)
    sm.update_secret_version_stage(
        SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=first, RemoveFromVersionId=current
    )
    try:
        code, checks = doctor(capsys, "API key secret still at its placeholder")

        assert code == 2
        assert failing(checks) == {"api-key-set", "magic-hour-key"}
        assert "placeholder" in checks["api-key-set"]["detail"]
        assert "401" in checks["magic-hour-key"]["detail"]  # the placeholder is no Magic Hour key
        for name in ("api-key-set", "magic-hour-key"):
            fix = checks[name]["fix"]
            assert (
                f'secretsmanager put-secret-value --secret-id {secret_id} --secret-string "$MAGIC_HOUR_API_KEY"' in fix
            )
        placeholder = sm.get_secret_value(SecretId=secret_id)["SecretString"]
        assert placeholder not in json.dumps(checks)  # never printed
    finally:
        sm.update_secret_version_stage(
            SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=current, RemoveFromVersionId=first
        )


def test_a_webhook_secret_that_is_not_magic_hours_is_found(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sm = stack.client("secretsmanager")
    secret_id = stack.endpoints.stack_outputs["WebhookSecretName"]
    # Given a webhook secret put by hand that is not the one Magic Hour (the emulator) signs with
    sm.put_secret_value(SecretId=secret_id, SecretString="copied-from-the-wrong-webhook")
    try:
        code, checks = doctor(capsys, "Webhook secret differs from Magic Hour's")

        assert code == 2
        assert failing(checks) == {"webhook"}
        assert "not the one Magic Hour signs with" in checks["webhook"]["detail"]
        fix = checks["webhook"]["fix"]
        assert f'put-secret-value --secret-id {secret_id} --secret-string "$WEBHOOK_SECRET"' in fix
        assert f"{stack.emulator.base_url}/_emulator/config" in fix  # where the local Magic Hour's secret is
        assert "copied-from-the-wrong-webhook" not in json.dumps(checks)
        assert stack.webhook_secret not in json.dumps(checks)
    finally:
        sm.put_secret_value(SecretId=secret_id, SecretString=stack.webhook_secret)


def test_the_operator_can_compare_the_stored_webhook_secret_with_the_one_magic_hour_shows(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the operator's copy of Magic Hour's signing secret in an environment variable (never an argument)
    monkeypatch.setenv("MH_SIGNING_SECRET", "what-the-developer-hub-shows")

    code = cli.main(["doctor", "--webhook-secret-env", "MH_SIGNING_SECRET", "--json"])
    webhook = next(c for c in json.loads(_cli_lines(capsys.readouterr().out))["checks"] if c["name"] == "webhook")

    assert code == 2
    assert webhook["status"] == "fail"
    assert "not the one Magic Hour signs with" in webhook["detail"]
    assert "what-the-developer-hub-shows" not in json.dumps(webhook)

    # When it is the stored one, they agree
    monkeypatch.setenv("MH_SIGNING_SECRET", stack.webhook_secret)
    assert cli.main(["doctor", "--webhook-secret-env", "MH_SIGNING_SECRET", "--json"]) == 0
    capsys.readouterr()
    # An unset variable is a usage error, not a finding
    assert cli.main(["doctor", "--webhook-secret-env", "NO_SUCH_VARIABLE_SET"]) == 1


def test_a_message_in_a_dlq_is_found_and_the_redrive_fix_empties_it(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a message the submit function gave up on (a malformed one: its retry is harmless)
    stack.client("sqs").send_message(
        QueueUrl=stack.endpoints.queues["IngestDLQ"], MessageBody=json.dumps({"not": "an S3 event"})
    )
    code, checks = doctor(capsys, "A message in the ingest DLQ")

    assert code == 2
    assert failing(checks) == {"dlqs"}
    assert "IngestDLQ 1" in checks["dlqs"]["detail"]
    assert checks["dlqs"]["fix"] == "cutout redrive IngestDLQ"

    # When the fix is run
    assert cli.main(checks["dlqs"]["fix"].split()[1:]) == 0
    capsys.readouterr()
    stack.emulator.wait_until(stack.quiescent, timeout=15)
    code, checks = doctor(capsys, "After `cutout redrive IngestDLQ`")
    assert code == 0


def test_stored_presets_that_do_not_parse_are_found_and_the_set_fix_clears_them(
    stack: LocalStack, local_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given presets stored behind `cutout presets set`'s back (the AWS CLI's put-parameter) that do not validate
    ssm, name = stack.client("ssm"), stack.endpoints.stack_outputs["PresetsParameterName"]
    bad = '{"presets": {"shop": {"format": "jpeg", "canvas": [90000, 90000]}}}'
    ssm.put_parameter(Name=name, Value=bad, Type="String", Overwrite=True)
    code, checks = doctor(capsys, "Stored presets that do not parse")

    assert code == 2
    assert failing(checks) == {"presets"}
    assert "does not parse" in checks["presets"]["detail"]
    assert "background" in checks["presets"]["detail"] and "90000" in checks["presets"]["detail"]
    assert "cutout presets set presets.json" in checks["presets"]["fix"]

    # When the fix is run with a good file
    good = tmp_path / "presets.json"
    good.write_text('{"presets": {"thumb": {"format": "webp", "max_side": 400}}}', encoding="utf-8")
    assert cli.main(["presets", "set", str(good)]) == 0
    capsys.readouterr()
    code, checks = doctor(capsys, "After `cutout presets set presets.json`")
    assert code == 0
    assert "1 preset(s) (thumb)" in checks["presets"]["detail"]
    ssm.put_parameter(Name=name, Value="{}", Type="String", Overwrite=True)


def test_a_renditions_queue_nothing_feeds_is_found(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the rule that sends "Cutout Completed" to the renditions queue disabled (a console click)
    events = stack.client("events")
    (rule,) = [r["Name"] for r in events.list_rules()["Rules"] if "RenditionsRule" in r["Name"]]
    events.disable_rule(Name=rule)
    try:
        code, checks = doctor(capsys, "The renditions rule disabled")
        assert code == 2
        assert failing(checks) == {"renditions-queue"}
        assert "no enabled EventBridge rule" in checks["renditions-queue"]["detail"]
        assert "list-rule-names-by-target" in checks["renditions-queue"]["fix"]
    finally:
        events.enable_rule(Name=rule)
    code, checks = doctor(capsys, "The renditions rule enabled again")
    assert code == 0
    assert rule in checks["renditions-queue"]["detail"]
    assert "RenditionsDLQ after 5 receives" in checks["renditions-queue"]["detail"]


def test_a_reservation_above_what_the_account_allows_is_found(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an account whose quota is 10 (a new account): AWS keeps all 10 unreserved, so no reservation fits
    state = json.loads(local_state.read_text(encoding="utf-8"))
    local_state.write_text(json.dumps({**state, "account_concurrency_quota": 10}), encoding="utf-8")

    code, checks = doctor(capsys, "Account concurrency quota 10, webhook reserving 3")

    assert code == 2
    assert failing(checks) == {"concurrency"}
    assert "quota 10" in checks["concurrency"]["detail"]
    assert "at most 0 can be reserved" in checks["concurrency"]["detail"]
    assert checks["concurrency"]["fix"] == "cutout local up --param WebhookReservedConcurrency=0"


def _write_transcripts(path: Path) -> None:
    lines = [
        "# `cutout doctor` transcripts",
        "",
        "Generated by running the command against the local stack, healthy and with each problem injected",
        "(tests/e2e/test_ops_doctor.py). Regenerate:",
        "",
        "```bash",
        "CUTOUT_DOCTOR_TRANSCRIPTS=docs/doctor-transcripts.md .venv/bin/python -m pytest tests/e2e/test_ops_doctor.py",
        "```",
        "",
        "Ports, bucket names and secret ARNs change on every start of the local stack. On a deployed stack the",
        "fixes name `aws --region R` and `.tools/sam/bin/sam deploy` instead of the local endpoint and `cutout local up`.",
        "",
    ]
    for scenario, command, code_text, text, code_json, raw in _recorded:
        lines += [
            f"## {scenario}",
            "",
            "```console",
            f"$ {command}",
            text.rstrip(),
            "$ echo $?",
            str(code_text),
            f"$ {command} --json",
            raw.rstrip(),
            "$ echo $?",
            str(code_json),
            "```",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
