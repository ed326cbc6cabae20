"""template.yaml against docs/design.md and the rules in docs (serverless-test-samples style: static checks).

The helpers at the top (``load_template``, ``function_environment``, ``FUNCTION_ENV``) are importable by other
modules that need to know which environment each function gets, e.g.::

    from tests.infrastructure.test_template import function_environment
    function_environment("SubmitFunction")  # {"JOBS_TABLE": {"Ref": "JobsTable"}, ...} (Globals merged)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from cutout_dev.local_stack import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
DESIGN = ROOT / "docs" / "design.md"

# Which functions consume which queue, and the DLQ each queue redrives to.
QUEUES = {
    "IngestQueue": ("IngestDLQ", "SubmitFunction"),
    "PollQueue": ("PollDLQ", "PollFunction"),
    "CompletionQueue": ("CompletionDLQ", "FinalizeFunction"),
    "RenditionsQueue": ("RenditionsDLQ", "RenditionsFunction"),
}
# The paid path's functions; the renditions function (after it, with its own imaging layer) completes the stack.
FUNCTIONS = ["SubmitFunction", "WebhookFunction", "PollFunction", "FinalizeFunction", "SweeperFunction"]
ALL_FUNCTIONS = [*FUNCTIONS, "RenditionsFunction"]
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}
_POLL_ENV = {"POLL_FIRST_DELAY_SECONDS", "POLL_MAX_DELAY_SECONDS", "POLL_MAX_ATTEMPTS", "POLL_MAX_WAIT_SECONDS"}
# Every function that takes, releases or reconciles an in-flight slot (admission.py).
_ADMISSION_ENV = {"MAX_JOBS_IN_FLIGHT", "UNKNOWN_OUTCOME_HOLD_SECONDS"}

# The environment contract: exactly these variables (plus the Powertools ones from Globals) per function.
FUNCTION_ENV: dict[str, set[str]] = {
    "SubmitFunction": {
        "JOBS_TABLE",
        "SOURCE_BUCKET",
        "INPUT_PREFIX",
        "OUTPUT_BUCKET",
        "OUTPUT_PREFIX",
        "RENDITIONS_PREFIX",
        "MAGIC_HOUR_BASE_URL",
        "MAGIC_HOUR_API_KEY_SECRET",
        "ASSET_TRANSFER",
        "PRESIGN_EXPIRES_SECONDS",
        "DEFAULT_BACKGROUND_KEY",
        "BACKGROUND_PREFIX",
        "MAX_INPUT_BYTES",
        "DAILY_CREDIT_BUDGET",
        "SUBMIT_LEASE_SECONDS",
        "INGEST_QUEUE_URL",
        *_ADMISSION_ENV,
        "POLL_QUEUE_URL",
        *_POLL_ENV,
    },
    "WebhookFunction": {"JOBS_TABLE", "MAGIC_HOUR_WEBHOOK_SECRET", "COMPLETION_QUEUE_URL"},
    "PollFunction": {
        "JOBS_TABLE",
        "MAGIC_HOUR_BASE_URL",
        "MAGIC_HOUR_API_KEY_SECRET",
        "POLL_QUEUE_URL",
        "COMPLETION_QUEUE_URL",
        "EVENT_BUS_NAME",
        *_POLL_ENV,
        *_ADMISSION_ENV,
        "INGEST_QUEUE_URL",
    },
    "FinalizeFunction": {
        "JOBS_TABLE",
        "SOURCE_BUCKET",
        "INPUT_PREFIX",
        "OUTPUT_BUCKET",
        "OUTPUT_PREFIX",
        "MAGIC_HOUR_BASE_URL",
        "MAGIC_HOUR_API_KEY_SECRET",
        "MAX_OUTPUT_BYTES",
        "EVENT_BUS_NAME",
        "POLL_QUEUE_URL",
        "POLL_FIRST_DELAY_SECONDS",
        *_ADMISSION_ENV,
        "INGEST_QUEUE_URL",
    },
    "SweeperFunction": {
        "JOBS_TABLE",
        "POLL_MAX_WAIT_SECONDS",
        "EVENT_BUS_NAME",
        "MAGIC_HOUR_BASE_URL",
        "MAGIC_HOUR_API_KEY_SECRET",
        "COMPLETION_QUEUE_URL",
        *_ADMISSION_ENV,
        "INGEST_QUEUE_URL",
    },
    "RenditionsFunction": {
        "JOBS_TABLE",
        "SOURCE_BUCKET",
        "INPUT_PREFIX",
        "OUTPUT_BUCKET",
        "OUTPUT_PREFIX",
        "BACKGROUND_PREFIX",
        "RENDITIONS_PREFIX",
        "PRESETS_PARAMETER",
        "MAX_RENDITION_PIXELS",
        "MAX_OUTPUT_BYTES",
        "EVENT_BUS_NAME",
    },
}

# Alarms on a rate rather than on the first occurrence (their threshold says how much background is normal).
RATE_ALARMS = {"WebhookRejected"}

# Actions that only exist account-wide (documented exceptions to "no Resource *").
RESOURCE_STAR_ALLOWED = {
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


# ----------------------------------------------------------------------------------------------- helpers
def load_template() -> dict[str, Any]:
    """template.yaml as plain dicts (short-form tags become ``{"Ref": ...}`` / ``{"Fn::...": ...}``)."""
    return cfn_yaml.load_template(TEMPLATE)


def resources(kind: str | None = None) -> dict[str, dict[str, Any]]:
    res: dict[str, dict[str, Any]] = load_template()["Resources"]
    return {k: v for k, v in res.items() if kind is None or v["Type"] == kind}


def props(logical_id: str) -> dict[str, Any]:
    return dict(load_template()["Resources"][logical_id].get("Properties", {}))


def function_setting(logical_id: str, name: str, default: Any = None) -> Any:
    """A function property with SAM Globals applied (function value wins)."""
    globals_fn = load_template().get("Globals", {}).get("Function", {})
    return props(logical_id).get(name, globals_fn.get(name, default))


def function_environment(logical_id: str) -> dict[str, Any]:
    """The environment variables a function gets (Globals merged), values as template intrinsics."""
    globals_fn = load_template().get("Globals", {}).get("Function", {})
    env = dict(globals_fn.get("Environment", {}).get("Variables", {}))
    env.update(props(logical_id).get("Environment", {}).get("Variables", {}))
    return env


def design_env_names() -> set[str]:
    """Every variable name in the environment table of docs/design.md."""
    names: set[str] = set()
    in_table = False
    for line in DESIGN.read_text().splitlines():
        if line.startswith("## "):
            in_table = line.strip() == "## Environment variables (function configuration; no secrets)"
            continue
        if in_table and line.startswith("|"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def sqs_events(logical_id: str) -> dict[str, dict[str, Any]]:
    events = props(logical_id).get("Events", {})
    return {k: e.get("Properties", {}) for k, e in events.items() if e["Type"] == "SQS"}


def _logical_id(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att.split(".")[0] if isinstance(att, str) else str(att[0])
    return None


def _branches(statement: Any) -> list[dict[str, Any]]:
    """A statement, or each statement a conditional (``Fn::If``) one may become (``AWS::NoValue`` is none)."""
    if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
        _, when_true, when_false = statement["Fn::If"]
        return [*_branches(when_true), *_branches(when_false)]
    if statement == {"Ref": "AWS::NoValue"}:
        return []
    return [statement]


def policy_statements(logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in props(logical_id).get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            for statement in policy["Statement"]:
                statements.extend(_branches(statement))
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _mentions(value: Any, needle: str) -> bool:
    return needle in json.dumps(value)


# ----------------------------------------------------------------------------------------------- basics
def test_serverless_transform_and_globals() -> None:
    tpl = load_template()
    assert tpl["Transform"] == "AWS::Serverless-2016-10-31"
    fn = tpl["Globals"]["Function"]
    assert fn["Runtime"] == "python3.13"
    assert fn["Architectures"] == ["arm64"]
    assert fn["MemorySize"] >= 256
    assert fn["Tracing"] == "Active"
    assert fn["LoggingConfig"]["LogFormat"] == "JSON"
    # Lambda's own filter gets LogLevel (with JSON logs it filters at INFO otherwise, and DEBUG would do nothing)
    assert fn["LoggingConfig"]["ApplicationLogLevel"] == {"Ref": "LogLevel"}
    assert fn["LoggingConfig"]["SystemLogLevel"] == "INFO"
    env = fn["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "cutout"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Cutout"
    assert "LOG_LEVEL" in env


def test_the_log_level_can_never_drop_the_metric_lines() -> None:
    # The EMF metric lines carry no level: Lambda's filter treats them as INFO, so a WARN or ERROR filter would drop
    # every custom metric and every alarm on them. Only levels that let INFO through are allowed, spelled as both
    # Lambda (TRACE DEBUG INFO WARN ERROR FATAL) and Powertools read them.
    spec = load_template()["Parameters"]["LogLevel"]
    assert spec["AllowedValues"] == ["DEBUG", "INFO"]
    assert spec["Default"] == "INFO"
    assert set(spec["AllowedValues"]) <= {"TRACE", "DEBUG", "INFO"}


def test_the_byte_limits_are_ones_the_functions_can_honour() -> None:
    # docs/deploy.md: finalize spools a cutout to /tmp (512 MB unless EphemeralStorage says more), one at a time,
    # and a full batch must be copied within its timeout; the submit streams an uploaded input within 30 s.
    params = load_template()["Parameters"]
    finalize = props("FinalizeFunction")
    tmp_bytes = int(finalize.get("EphemeralStorage", {}).get("Size", 512)) * 1000 * 1000
    batch = finalize["Events"]["Completion"]["Properties"]["BatchSize"]
    most_output = params["MaxOutputBytes"]["MaxValue"]
    assert most_output < tmp_bytes
    # each cutout is downloaded then uploaded: a full batch at the limit needs at most ~17 MB/s each way
    assert 2 * batch * most_output / finalize["Timeout"] <= 20 * 1000 * 1000
    assert params["MaxInputBytes"]["MaxValue"] <= 100 * 1024 * 1024
    for name in ("MaxInputBytes", "MaxOutputBytes"):
        assert params[name]["MinValue"] <= params[name]["Default"] <= params[name]["MaxValue"]


@pytest.mark.parametrize("logical_id", ALL_FUNCTIONS)
def test_function_shape(logical_id: str) -> None:
    p = props(logical_id)
    assert resources()[logical_id]["Type"] == "AWS::Serverless::Function"
    assert p["Handler"] == "app.lambda_handler"
    assert p["CodeUri"] == f"functions/{logical_id.removesuffix('Function').lower()}/"
    # The imaging layer only where renditions are made: the paid path keeps boto3, requests and Powertools.
    imaging = [{"Ref": "ImagingLayer"}] if logical_id == "RenditionsFunction" else []
    assert p["Layers"] == [{"Ref": "SharedLayer"}, *imaging]
    # An explicit log group with retention, attached through LoggingConfig.
    log_group = _logical_id(p["LoggingConfig"]["LogGroup"])
    assert log_group is not None
    assert resources()[log_group]["Type"] == "AWS::Logs::LogGroup"
    assert props(log_group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_shared_layer() -> None:
    layer = resources()["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    p = layer["Properties"]
    assert p["ContentUri"] == "layers/shared/"
    assert p["CompatibleRuntimes"] == ["python3.13"]
    assert p["CompatibleArchitectures"] == ["arm64"]
    assert (ROOT / "layers/shared/requirements.txt").is_file()


# ----------------------------------------------------------------------------------------------- table
def test_jobs_table_matches_design() -> None:
    table = resources()["JobsTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    p = table["Properties"]
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    attrs = {a["AttributeName"]: a["AttributeType"] for a in p["AttributeDefinitions"]}
    assert attrs == {"job_id": "S", "status": "S", "created_at": "S", "project_id": "S"}
    gsis = {g["IndexName"]: g for g in p["GlobalSecondaryIndexes"]}
    assert set(gsis) == {"by-status", "by-project"}
    assert gsis["by-status"]["KeySchema"] == [
        {"AttributeName": "status", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert gsis["by-status"]["Projection"] == {"ProjectionType": "ALL"}
    assert gsis["by-project"]["KeySchema"] == [{"AttributeName": "project_id", "KeyType": "HASH"}]
    assert gsis["by-project"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert p["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert p["SSESpecification"]["SSEEnabled"] is True


def test_design_names_the_same_table_schema() -> None:
    design = DESIGN.read_text()
    for fragment in ("`job_id` (S)", "`expires_at`", "GSI `by-status`", "GSI `by-project`", "KEYS_ONLY"):
        assert fragment in design


# ----------------------------------------------------------------------------------------------- queues
@pytest.mark.parametrize("queue", sorted(QUEUES))
def test_receive_thresholds_are_derived_from_the_queues_max_receive_count(queue: str) -> None:
    # given: the domain's one constant behind its receive thresholds
    from cutout.domain import messages

    # then: every queue dead-letters on that very receive, and each threshold acts before the DLQ would
    assert props(queue)["RedrivePolicy"]["maxReceiveCount"] == messages.MAX_RECEIVE_COUNT
    for threshold in (
        messages.UNKNOWN_JOB_RECEIVES,
        messages.INVALID_OUTPUT_RECEIVES,
        messages.DOWNLOAD_GIVE_UP_RECEIVES,
    ):
        assert 1 <= threshold < messages.MAX_RECEIVE_COUNT


def test_submit_parks_uploads_in_the_queue_it_consumes() -> None:
    env = function_environment("SubmitFunction")
    assert env["INGEST_QUEUE_URL"] == {"Ref": "IngestQueue"}
    # and that queue is the one the submit's event source consumes: a parked upload comes back to the submit
    consumed = [_logical_id(e["Queue"]) for e in sqs_events("SubmitFunction").values()]
    assert consumed == ["IngestQueue"]


@pytest.mark.parametrize("queue", sorted(QUEUES))
def test_queue_has_dlq_and_is_encrypted(queue: str) -> None:
    dlq, _ = QUEUES[queue]
    p = props(queue)
    assert p["SqsManagedSseEnabled"] is True
    assert _logical_id(p["RedrivePolicy"]["deadLetterTargetArn"]) == dlq
    assert p["RedrivePolicy"]["maxReceiveCount"] == 5
    d = props(dlq)
    assert d["SqsManagedSseEnabled"] is True
    assert d["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert d["MessageRetentionPeriod"] >= p.get("MessageRetentionPeriod", 345600)
    assert "redrivePermission" in d["RedriveAllowPolicy"]


@pytest.mark.parametrize("queue", sorted(QUEUES))
def test_visibility_timeout_is_six_times_the_consumer_timeout(queue: str) -> None:
    _, consumer = QUEUES[queue]
    events = [e for e in sqs_events(consumer).values() if _logical_id(e["Queue"]) == queue]
    assert len(events) == 1, f"{consumer} should consume {queue}"
    timeout = function_setting(consumer, "Timeout", 3)
    window = events[0].get("MaximumBatchingWindowInSeconds", 0)
    assert props(queue)["VisibilityTimeout"] >= 6 * (timeout + window)


@pytest.mark.parametrize("logical_id", [c for _, c in QUEUES.values()])
def test_sqs_event_sources_report_batch_item_failures(logical_id: str) -> None:
    events = sqs_events(logical_id)
    assert events
    for event in events.values():
        assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert 1 <= event["BatchSize"] <= 10


def test_submit_concurrency_is_capped() -> None:
    (event,) = sqs_events("SubmitFunction").values()
    assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaximumConcurrency"}
    assert event["BatchSize"] == 10
    assert event["MaximumBatchingWindowInSeconds"] == 0  # latency: an upload starts at once
    param = load_template()["Parameters"]["MaximumConcurrency"]
    assert param["MinValue"] >= 2  # the smallest MaximumConcurrency SQS event sources accept


def test_poll_delays_fit_sqs() -> None:
    params = load_template()["Parameters"]
    for name in ("PollFirstDelaySeconds", "PollMaxDelaySeconds"):
        assert params[name]["MaxValue"] <= 900


# ----------------------------------------------------------------------------------------------- ingest
def test_images_bucket_is_private_and_sends_eventbridge_events() -> None:
    bucket = resources()["ImagesBucket"]
    assert bucket["Condition"] == "CreateBucket"
    p = bucket["Properties"]
    assert all(p["PublicAccessBlockConfiguration"].values())
    assert len(p["PublicAccessBlockConfiguration"]) == 4
    assert p["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    assert p["VersioningConfiguration"]["Status"] == "Enabled"
    assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    (statement,) = props("ImagesBucketPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_ingest_rule_filters_on_the_input_prefix() -> None:
    p = props("IngestRule")
    pattern = p["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert _mentions(pattern["detail"]["bucket"]["name"], "ExistingBucketName")
    object_filter = pattern["detail"]["object"]
    condition, with_prefix, without_prefix = object_filter["Fn::If"]
    assert condition == "HasInputPrefix"
    assert with_prefix == {"key": [{"prefix": {"Ref": "InputPrefix"}}]}
    # Whole bucket watched: the output prefix is excluded when the cutouts land in the same bucket, else the
    # backgrounds (one prefix: EventBridge documents no list; test_template_deploy_rules resolves both cases)
    excluded = without_prefix["key"][0]["anything-but"]["prefix"]["Fn::If"]
    assert excluded == ["ExcludeOutputPrefix", {"Ref": "OutputPrefix"}, {"Ref": "BackgroundPrefix"}]
    (target,) = p["Targets"]
    assert _logical_id(target["Arn"]) == "IngestQueue"
    assert _logical_id(target["DeadLetterConfig"]["Arn"]) == "IngestDLQ"


def test_only_the_ingest_rule_may_send_to_the_ingest_queue() -> None:
    p = props("IngestQueuePolicy")
    assert {"Ref": "IngestQueue"} in p["Queues"]
    (statement,) = p["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert _logical_id(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == "IngestRule"


def test_rules_reject_overlapping_prefixes() -> None:
    rule = load_template()["Rules"]["OutputDoesNotOverlapInput"]
    asserts = json.dumps(rule["Assertions"])
    assert '{"Fn::Equals": [{"Ref": "OutputPrefix"}, ""]}' in asserts
    assert '{"Fn::Equals": [{"Ref": "OutputPrefix"}, {"Ref": "InputPrefix"}]}' in asserts
    for name in ("InputPrefix", "OutputPrefix"):
        pattern = load_template()["Parameters"][name]["AllowedPattern"]
        assert re.fullmatch(pattern, "incoming/")
        assert re.fullmatch(pattern, "")
        assert not re.fullmatch(pattern, "incoming")  # always ends with "/"
        assert not re.fullmatch(pattern, "/incoming/")
        assert not re.fullmatch(pattern, "in*/")  # would be a wildcard in IAM resources


# ----------------------------------------------------------------------------------------------- environment
def test_every_environment_variable_is_in_the_design() -> None:
    documented = design_env_names()
    assert {"JOBS_TABLE", "SUBMIT_LEASE_SECONDS", "POWERTOOLS_SERVICE_NAME"} <= documented
    for logical_id in ALL_FUNCTIONS:
        unknown = set(function_environment(logical_id)) - documented
        assert not unknown, f"{logical_id}: {unknown} not in docs/design.md"


@pytest.mark.parametrize("logical_id", ALL_FUNCTIONS)
def test_function_gets_exactly_the_variables_it_needs(logical_id: str) -> None:
    assert set(function_environment(logical_id)) == FUNCTION_ENV[logical_id] | POWERTOOLS_ENV


_SAFE_LITERAL = re.compile(r"^[A-Za-z0-9_./:-]{0,40}$")


@pytest.mark.parametrize("logical_id", ALL_FUNCTIONS)
def test_no_secret_values_in_the_environment(logical_id: str) -> None:
    params = load_template()["Parameters"]
    assert not any(p.get("NoEcho") for p in params.values()), "NoEcho parameters end up readable/printed"
    for name, value in function_environment(logical_id).items():
        text = json.dumps(value)
        assert "resolve:secretsmanager" not in text, name
        assert "resolve:ssm-secure" not in text, name
        if isinstance(value, str):
            assert _SAFE_LITERAL.match(value), f"{name}={value!r} looks like more than a setting"
        if "SECRET" in name:
            # A secret *id*: a Ref to a Secrets Manager secret of this stack, never a value.
            ref = _logical_id(value)
            assert ref is not None, name
            assert resources()[ref]["Type"] == "AWS::SecretsManager::Secret", name


def test_secrets_are_placeholders_with_instructions() -> None:
    for logical_id in ("ApiKeySecret", "WebhookSecret"):
        p = props(logical_id)
        assert "GenerateSecretString" in p
        assert "SecretString" not in p
        assert "put-secret-value" in json.dumps(p["Description"])
    for output in load_template()["Outputs"].values():
        text = json.dumps(output["Value"])
        assert "SecretString" not in text
        assert "resolve:secretsmanager" not in text


# ----------------------------------------------------------------------------------------------- IAM
@pytest.mark.parametrize("logical_id", ALL_FUNCTIONS)
def test_no_data_plane_statement_on_every_resource(logical_id: str) -> None:
    statements = policy_statements(logical_id)
    assert statements, f"{logical_id} has no inline policy"
    for policy in props(logical_id).get("Policies", []):
        assert isinstance(policy, dict), f"{logical_id}: use inline statements, not broad policy templates"
    for statement in statements:
        actions = _as_list(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement
        if "*" in _as_list(statement["Resource"]):
            assert set(actions) <= RESOURCE_STAR_ALLOWED, statement


def _granted(logical_id: str) -> dict[str, list[str]]:
    grants: dict[str, list[str]] = {}
    for statement in policy_statements(logical_id):
        for action in _as_list(statement["Action"]):
            grants.setdefault(action, []).append(json.dumps(statement["Resource"]))
    return grants


def test_permissions_follow_the_data_flow() -> None:
    submit = _granted("SubmitFunction")
    assert any("InputPrefix" in r for r in submit["s3:GetObject"])
    assert "s3:PutObject" not in submit
    assert any("PollQueue" in r for r in submit["sqs:SendMessage"])
    assert any("ApiKeySecret" in r for r in submit["secretsmanager:GetSecretValue"])
    webhook = _granted("WebhookFunction")
    assert set(webhook) == {
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    (replay_guard,) = [s for s in policy_statements("WebhookFunction") if s["Action"][0].startswith("dynamodb:")]
    # The public endpoint may only touch its own replay-guard items.
    assert replay_guard["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["webhook#*"]}}
    assert any("CompletionQueue" in r for r in webhook["sqs:SendMessage"])
    assert any("WebhookSecret" in r for r in webhook["secretsmanager:GetSecretValue"])
    poll = _granted("PollFunction")
    assert any("PollQueue" in r and "CompletionQueue" in r for r in poll["sqs:SendMessage"])
    assert "events:PutEvents" in poll  # timed_out -> "Cutout Failed"
    finalize = _granted("FinalizeFunction")
    assert all("OutputPrefix" in r for r in finalize["s3:PutObject"])
    assert "events:PutEvents" in finalize
    sweeper = _granted("SweeperFunction")
    assert "events:PutEvents" in sweeper
    assert "dynamodb:Query" in sweeper
    for logical_id in FUNCTIONS:
        for action, where in _granted(logical_id).items():
            if action.startswith("dynamodb:"):
                assert all("JobsTable" in r for r in where), (logical_id, action)


def test_webhook_is_public_and_authenticated_in_code() -> None:
    p = props("WebhookFunction")
    assert p["FunctionUrlConfig"]["AuthType"] == "NONE"
    assert p["Timeout"] <= 10
    # The reason is documented next to the resource.
    assert "authentication is the webhook HMAC signature" in TEMPLATE.read_text()


def test_sweeper_runs_on_a_schedule() -> None:
    events = props("SweeperFunction")["Events"]
    assert {e["Type"] for e in events.values()} == {"Schedule"}
    assert events["Sweep"]["Properties"]["Schedule"] == "rate(15 minutes)"
    # The admission tick (slot reconciliation, dispatch of waiting jobs) runs every minute on the same function.
    assert events["Admission"]["Properties"]["Schedule"] == "rate(1 minute)"
    assert json.loads(events["Admission"]["Properties"]["Input"]) == {"task": "admission"}


# ----------------------------------------------------------------------------------------------- alarms
def _alarms() -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources("AWS::CloudWatch::Alarm").values()]


def test_alarms_cover_dlqs_functions_and_business_metrics() -> None:
    alarms = _alarms()
    for dlq, _ in QUEUES.values():
        assert any(
            a["MetricName"] == "ApproximateNumberOfMessagesVisible" and _mentions(a["Dimensions"], dlq) for a in alarms
        ), dlq
    for fn in ALL_FUNCTIONS:
        assert any(a["MetricName"] == "Errors" and _mentions(a["Dimensions"], fn) for a in alarms), fn
    for metric in ("StuckJobs", "AmbiguousCreates", "BudgetExhausted"):
        (alarm,) = [a for a in alarms if a["MetricName"] == metric]
        assert alarm["Namespace"] == "Cutout"
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "cutout"}]
    for alarm in alarms:
        # Rate alarms tolerate a background (a stray refused webhook is no incident); the rest fire on the first.
        assert alarm["Threshold"] == 0 or (alarm["MetricName"] in RATE_ALARMS and alarm["Threshold"] > 0)
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_alarm_topic_key_admits_cloudwatch() -> None:
    # alias/aws/sns cannot be used: CloudWatch alarms may not use the AWS managed key.
    assert props("AlarmTopic")["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    statements = props("AlarmTopicKey")["KeyPolicy"]["Statement"]
    assert any(s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} for s in statements)
    assert resources()["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"


# ----------------------------------------------------------------------------------------------- outputs
def test_outputs_users_need() -> None:
    outputs = load_template()["Outputs"]
    needed = {
        "BucketName",
        "InputS3Uri",
        "OutputS3Uri",
        "WebhookUrl",
        "JobsTableName",
        "IngestQueueUrl",
        "PollQueueUrl",
        "CompletionQueueUrl",
        "IngestDLQUrl",
        "PollDLQUrl",
        "CompletionDLQUrl",
        "AlarmTopicArn",
        "ApiKeySecretArn",
        "WebhookSecretArn",
        "SharedLayerArn",
    }
    assert needed <= set(outputs)
    assert outputs["WebhookUrl"]["Value"] == {"Fn::GetAtt": ["WebhookFunctionUrl", "FunctionUrl"]}


# ----------------------------------------------------------------------------------------------- translation
class _ManagedPolicies(dict[str, str]):
    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __getitem__(self, key: str) -> str:
        return f"arn:aws:iam::aws:policy/{key}"


def test_sam_translation_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """What CloudFormation's transform produces: event source mappings and the public URL permissions."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = load_template()
    for res in sam["Resources"].values():
        for key in ("CodeUri", "ContentUri"):
            if key in res.get("Properties", {}):
                res["Properties"][key] = {"Bucket": "code", "Key": "code.zip"}
    policies = _ManagedPolicies()
    cfn = Translator(policies, Parser()).translate(sam, parameter_values={}, get_managed_policy_map=lambda: policies)
    out = cfn["Resources"]
    mappings = [r["Properties"] for r in out.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 4
    assert all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)
    permissions = [r["Properties"] for r in out.values() if r["Type"] == "AWS::Lambda::Permission"]
    public = {p["Action"] for p in permissions if p.get("Principal") == "*"}
    # Since October 2025 a public function URL needs both.
    assert public == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    for logical_id in ALL_FUNCTIONS:
        config = out[logical_id]["Properties"]["LoggingConfig"]
        assert config["LogFormat"] == "JSON"
        assert "LogGroup" in config
        # Globals' levels merged with each function's own log group
        assert config["ApplicationLogLevel"] == {"Ref": "LogLevel"}
        assert config["SystemLogLevel"] == "INFO"


# ----------------------------------------------------------------------------------------------- admission
def test_the_code_defaults_behind_slot_reconciliation_match_the_template() -> None:
    # given: the reconciliation's defaults, used where a function has no such variable of its own
    from cutout.admission.reconcile import DEFAULT_SUBMIT_LEASE, DEFAULT_UNKNOWN_OUTCOME_HOLD
    from cutout.runtime.config import Settings

    settings = Settings.from_env({"JOBS_TABLE": "t"})
    # then: every function reconciles slots with the submit's own claim lease (only the submit sets it) ...
    assert function_environment("SubmitFunction")["SUBMIT_LEASE_SECONDS"] == str(
        int(DEFAULT_SUBMIT_LEASE.total_seconds())
    )
    assert settings.submit_lease_seconds == DEFAULT_SUBMIT_LEASE.total_seconds()
    # ... and the unknown-outcome bound defaults to the template's parameter
    hold = load_template()["Parameters"]["UnknownOutcomeHoldSeconds"]["Default"]
    assert hold == DEFAULT_UNKNOWN_OUTCOME_HOLD.total_seconds() == settings.unknown_outcome_hold_seconds


def test_cold_start_bench_turns_admission_on_where_the_template_does() -> None:
    # Given the bench's per-function environment, when compared with the template's,
    # then admission is on in exactly the functions deployed with MAX_JOBS_IN_FLIGHT (its modules load there).
    from cutout_dev.bench.coldstart import ADMISSION_FUNCTIONS

    deployed = {fn for fn in FUNCTIONS if "MAX_JOBS_IN_FLIGHT" in function_environment(fn)}
    assert {f"{name.capitalize()}Function" for name in ADMISSION_FUNCTIONS} == deployed
