"""template.yaml against what AWS refuses at create time (cutout_dev.local_stack.deploy_rules).

moto accepts what CloudFormation, Lambda, SQS and EventBridge refuse on a first ``sam deploy``. The template is
translated as CloudFormation's transform would, resolved over every parameter combination that changes its
resources, and checked with the deploy rules the local stack also runs; then each rule is shown to catch its
refusal on a tiny bad template.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cutout_dev.local_stack import deploy_rules as dr
from cutout_dev.local_stack.cfn_yaml import load_template
from cutout_dev.local_stack.template import TranslatedTemplate, translate

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# CloudFormation allows stack names of up to 128 characters: every name the template builds from it must fit.
LONGEST_STACK_NAME = ("cutout-production-" + "x" * 128)[:128]
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EXISTING_BUCKET = "acme-product-photos"
OTHER_BUCKET = "acme-cutouts"


@pytest.fixture(scope="module")
def translated() -> TranslatedTemplate:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return translate(TEMPLATE, {})


# ----------------------------------------------------------------------------------------------- combinations
def _combinations() -> Iterator[dict[str, str]]:
    """Every combination of the parameters that change resources, patterns, policies or reservations."""
    for input_prefix, existing, output, budget, reserved, kms, background in itertools.product(
        ["incoming/", ""],
        ["", EXISTING_BUCKET],
        ["", "same", OTHER_BUCKET],
        ["0", "500"],
        ["0", "5"],
        ["", KMS_KEY],
        ["", "backgrounds/studio.png"],
    ):
        if output == "same" and not existing:
            continue  # a created bucket's name is generated: it cannot be named as the output bucket beforehand
        yield {
            "InputPrefix": input_prefix,
            "ExistingBucketName": existing,
            "OutputBucketName": existing if output == "same" else output,
            "DailyCreditBudget": budget,
            "WebhookReservedConcurrency": reserved,
            "BucketKmsKeyArn": kms,
            "DefaultBackgroundKey": background,
        }


def _id(params: dict[str, str]) -> str:
    return ",".join(f"{k}={v.replace(KMS_KEY, 'key')!r}" for k, v in params.items())


COMBINATIONS = list(_combinations())


def _quota(params: dict[str, str]) -> int:
    """A reservation is checked against AWS's default quota; no reservation against a new account's (10)."""
    return 1000 if params["WebhookReservedConcurrency"] != "0" else 10


def test_the_translation_does_not_depend_on_the_parameters(translated: TranslatedTemplate) -> None:
    # given the template translated with the defaults, when translated with the other value of every parameter
    # that changes resources, then CloudFormation gets the same template: resolving one translation is faithful
    other = translate(TEMPLATE, COMBINATIONS[-1])
    assert json.dumps(other.cfn, sort_keys=True) == json.dumps(translated.cfn, sort_keys=True)


@pytest.mark.parametrize("params", COMBINATIONS, ids=_id)
def test_aws_accepts_the_stack(translated: TranslatedTemplate, params: dict[str, str]) -> None:
    # given one combination, resolved for the longest stack name CloudFormation allows
    resolved = dr.resolve_template(translated.cfn, params, stack_name=LONGEST_STACK_NAME, region="eu-west-1")
    # when every deploy rule runs (a reservation against the default quota, none against a new account's)
    violations = dr.check(resolved, dr.Account(concurrency_quota=_quota(params)))
    # then nothing is refused, and AWS's recommendations are kept too
    assert not violations, "\n".join(str(v) for v in violations)


# Conditional parameters the combinations leave at their default, each with why no deploy rule can see it.
NOT_VARIED = {"AlarmEmail": "adds one SNS email subscription to the alarm topic; no deploy rule reads subscriptions"}


def _parameters_in_conditions(node: Any) -> set[str]:
    """The parameters the template's Conditions read (a `Ref` to anything not a pseudo parameter)."""
    if isinstance(node, dict):
        found = {node["Ref"]} if isinstance(node.get("Ref"), str) and "::" not in node["Ref"] else set()
        return found.union(*(_parameters_in_conditions(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_parameters_in_conditions(v) for v in node))
    return set()


def test_every_parameter_a_condition_reads_is_varied(translated: TranslatedTemplate) -> None:
    # given the parameters the template's conditions read (what changes resources, policies and reservations)
    conditional = _parameters_in_conditions(load_template(TEMPLATE).get("Conditions", {})) - NOT_VARIED.keys()
    # then the combinations give each of them every side its conditions test: at least two values each, one
    # of them the empty string or "0" where a condition tests for "nothing"
    values = {name: {c.get(name) for c in COMBINATIONS} for name in conditional}
    assert not [n for n, v in values.items() if None in v], "a conditional parameter the combinations never set"
    assert not [n for n, v in values.items() if len(v) < 2], "a conditional parameter the combinations never vary"


# ----------------------------------------------------------------------------------------------- the two defects
def _resolve(translated: TranslatedTemplate, **params: str) -> dr.ResolvedTemplate:
    return dr.resolve_template(translated.cfn, params, stack_name="cutout")


def test_the_default_stack_reserves_nothing_so_a_new_account_accepts_it(translated: TranslatedTemplate) -> None:
    resolved = _resolve(translated)
    assert not [
        fn for fn, res in resolved.of_type(dr.FUNCTION).items() if "ReservedConcurrentExecutions" in res["Properties"]
    ]
    assert dr.check(resolved, dr.Account(concurrency_quota=10)) == []


def test_a_chosen_webhook_reservation_is_refused_where_the_account_cannot_give_it(
    translated: TranslatedTemplate,
) -> None:
    # given a reservation of 5 on the public webhook
    resolved = _resolve(translated, WebhookReservedConcurrency="5")
    assert resolved.properties("WebhookFunction")["ReservedConcurrentExecutions"] == "5"
    # then a default account gives it, a new account (quota 10) and one at 104 do not, one at 105 does
    assert dr.check(resolved, dr.Account(concurrency_quota=1000)) == []
    for quota, minimum in ((10, 10), (104, 100)):
        (refusal,) = dr.check(resolved, dr.Account(concurrency_quota=quota))
        assert refusal.resource == "WebhookFunction"
        assert refusal.message == (
            "Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
        )
    assert dr.check(resolved, dr.Account(concurrency_quota=105)) == []


def test_the_parameter_says_when_to_turn_the_reservation_on(translated: TranslatedTemplate) -> None:
    spec = translated.cfn["Parameters"]["WebhookReservedConcurrency"]
    assert (spec["Type"], spec["Default"], spec["MinValue"]) == ("Number", 0, 0)
    assert "get-account-settings" in spec["Description"]
    groups = translated.cfn["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [p for g in groups for p in g["Parameters"]]
    assert {"WebhookReservedConcurrency", "BucketKmsKeyArn"} <= set(grouped)
    assert sorted(grouped) == sorted(translated.cfn["Parameters"])  # every parameter in exactly one group


def _key_filter(resolved: dr.ResolvedTemplate) -> Any:
    return resolved.properties("IngestRule")["EventPattern"]["detail"].get("object")


def test_the_ingest_pattern_has_no_object_filter_when_it_has_nothing_to_filter(translated: TranslatedTemplate) -> None:
    # whole bucket watched, cutouts elsewhere: no key filter at all (an empty `object` would be refused)
    elsewhere = _resolve(translated, InputPrefix="", ExistingBucketName=EXISTING_BUCKET, OutputBucketName=OTHER_BUCKET)
    assert _key_filter(elsewhere) is None
    assert list(dr.event_patterns(elsewhere, dr.Account())) == []
    # whole bucket watched, cutouts in it: everything but the output prefix
    same = _resolve(translated, InputPrefix="", ExistingBucketName=EXISTING_BUCKET)
    assert _key_filter(same) == {"key": [{"anything-but": {"prefix": "cutouts/"}}]}
    # an input prefix: only under it
    assert _key_filter(_resolve(translated)) == {"key": [{"prefix": "incoming/"}]}


# ----------------------------------------------------------------------------------------------- KMS
def _statements(resolved: dr.ResolvedTemplate, role: str) -> list[dict[str, Any]]:
    return [s for p in resolved.properties(role)["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_a_bucket_key_is_granted_last_and_only_through_s3(translated: TranslatedTemplate) -> None:
    resolved = dr.resolve_template(translated.cfn, {"BucketKmsKeyArn": KMS_KEY}, stack_name="c", region="eu-west-1")
    expected = {
        "SubmitFunctionRole": ["kms:Decrypt"],  # its own ranged GET, and Magic Hour's presigned GET it signed
        "FinalizeFunctionRole": ["kms:GenerateDataKey", "kms:Decrypt"],  # writing (multipart too) the cutout
    }
    for role, actions in expected.items():
        last = _statements(resolved, role)[-1]
        assert last["Sid"] == "BucketKey"
        assert last["Effect"] == "Allow"
        assert (last["Action"] if isinstance(last["Action"], list) else [last["Action"]]) == actions
        assert last["Resource"] == KMS_KEY
        assert last["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    # no other role is given the key, and without a key nobody is
    for role in ("WebhookFunctionRole", "PollFunctionRole", "SweeperFunctionRole"):
        assert "BucketKey" not in {s.get("Sid") for s in _statements(resolved, role)}
    without = _resolve(translated)
    for role in expected:
        assert "BucketKey" not in {s.get("Sid") for s in _statements(without, role)}
        assert not any("kms:" in json.dumps(s["Action"]) for s in _statements(without, role))


def test_the_key_parameter_takes_a_key_arn_or_nothing(translated: TranslatedTemplate) -> None:
    for value, accepted in ((KMS_KEY, True), ("", True), ("alias/images", False), ("1234abcd-12ab", False)):
        resolved = dr.resolve_template(translated.cfn, {"BucketKmsKeyArn": value}, stack_name="c")
        refused = [v for v in dr.parameter_constraints(resolved, dr.Account()) if v.resource == "BucketKmsKeyArn"]
        assert (refused == []) is accepted, value


# ----------------------------------------------------------------------------------------------- each rule
def _tiny(resources: dict[str, Any], **kwargs: Any) -> dr.ResolvedTemplate:
    cfn = {"Resources": resources, **kwargs}
    return dr.resolve_template(cfn, {}, stack_name="tiny")


def _messages(resolved: dr.ResolvedTemplate, rule: dr.Rule, quota: int = 1000) -> list[str]:
    return [v.message for v in rule(resolved, dr.Account(concurrency_quota=quota))]


def _rule(pattern: Any) -> dict[str, Any]:
    return {"Type": "AWS::Events::Rule", "Properties": {"EventPattern": pattern}}


def test_event_patterns_refuse_empty_objects_arrays_and_bare_leaves() -> None:
    cases = {
        "Empty objects are not allowed": {"source": ["aws.s3"], "detail": {"object": {}}},
        "Empty arrays are not allowed": {"source": []},
        '"source" must be an object or an array': {"source": "aws.s3"},
    }
    for reason, pattern in cases.items():
        assert _messages(_tiny({"R": _rule(pattern)}), dr.event_patterns) == [
            f"Event pattern is not valid. Reason: {reason}"
        ]
    matcher = {"detail": {"key": [{"anything-but": []}]}}
    assert _messages(_tiny({"R": _rule(matcher)}), dr.event_patterns) == [
        "Event pattern is not valid. Reason: Empty arrays are not allowed"
    ]
    good = {"source": ["aws.s3"], "detail": {"object": {"key": [{"prefix": "in/"}]}}}
    assert _messages(_tiny({"R": _rule(good)}), dr.event_patterns) == []


def test_the_empty_object_yesterdays_fn_if_produced_is_caught_after_resolution() -> None:
    # given the key filter as the template had it: a NoValue inside `object` when there is nothing to filter
    pattern = {"detail": {"object": {"key": {"Fn::If": ["HasPrefix", [{"prefix": "in/"}], {"Ref": "AWS::NoValue"}]}}}}
    cfn: dict[str, Any] = {
        "Parameters": {"Prefix": {"Type": "String", "Default": ""}},
        "Conditions": {"HasPrefix": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Prefix"}, ""]}]}},
        "Resources": {"R": _rule(pattern)},
    }
    refused = dr.event_patterns(dr.resolve_template(cfn, {}, stack_name="s"), dr.Account())
    assert [v.message for v in refused] == ["Event pattern is not valid. Reason: Empty objects are not allowed"]
    accepted = dr.event_patterns(dr.resolve_template(cfn, {"Prefix": "in/"}, stack_name="s"), dr.Account())
    assert list(accepted) == []


def _function(**props: Any) -> dict[str, Any]:
    return {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "app.handler", **props}}


def test_reservations_must_leave_the_account_its_unreserved_minimum() -> None:
    tpl = _tiny({"A": _function(ReservedConcurrentExecutions=60), "B": _function(ReservedConcurrentExecutions=50)})
    assert _messages(tpl, dr.reserved_concurrency, quota=1000) == []
    assert _messages(tpl, dr.reserved_concurrency, quota=210) == []  # 110 of the 110 reservable
    # the second reservation is the one that crosses the line
    (refused,) = dr.reserved_concurrency(tpl, dr.Account(concurrency_quota=209))
    assert refused.resource == "B"
    assert "minimum value of [100]" in refused.message
    # a quota of 50 keeps all 50 unreserved: AWS says [50]
    assert [m[-5:] for m in _messages(tpl, dr.reserved_concurrency, quota=50)] == ["[50].", "[50]."]


def test_with_webhook_reserved_concurrency_0_no_function_reserves() -> None:
    cfn: dict[str, Any] = {
        "Parameters": {"WebhookReservedConcurrency": {"Type": "Number", "Default": 0}},
        "Resources": {"Hook": _function(ReservedConcurrentExecutions=3)},
    }
    refused = dr.no_reservation_by_default(dr.resolve_template(cfn, {}, stack_name="s"), dr.Account())
    assert [v.resource for v in refused] == ["Hook"]
    chosen = dr.resolve_template(cfn, {"WebhookReservedConcurrency": "3"}, stack_name="s")
    assert list(dr.no_reservation_by_default(chosen, dr.Account())) == []


def _queue_and_consumer(visibility: int | None, timeout: int | None, **esm: Any) -> dr.ResolvedTemplate:
    queue: dict[str, Any] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    if visibility is not None:
        queue["Properties"]["VisibilityTimeout"] = visibility
    fn = _function(**({} if timeout is None else {"Timeout": timeout}))
    mapping = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Q", "Arn"]}, "FunctionName": {"Ref": "F"}, **esm},
    }
    return _tiny({"Q": queue, "F": fn, "M": mapping})


def test_a_queue_must_hide_messages_at_least_as_long_as_its_consumer_runs() -> None:
    (refused,) = dr.sqs_visibility(_queue_and_consumer(30, 60), dr.Account())
    assert refused.message == (
        "Invalid request provided: Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds"
    )
    assert not refused.advice
    # at the timeout AWS accepts it, but recommends six times the timeout
    (advice,) = dr.sqs_visibility(_queue_and_consumer(60, 60), dr.Account())
    assert advice.advice
    assert advice.rule == "lambda.sqs-visibility-6x"
    assert list(dr.sqs_visibility(_queue_and_consumer(360, 60), dr.Account())) == []
    # SQS's and Lambda's defaults (30 s, 3 s) pass
    assert list(dr.sqs_visibility(_queue_and_consumer(None, None), dr.Account())) == []


def test_queue_attributes_and_redrive_within_sqs_ranges() -> None:
    def queue(**props: Any) -> dr.ResolvedTemplate:
        return _tiny({"Q": {"Type": "AWS::SQS::Queue", "Properties": props}})

    refused = {
        "DelaySeconds": 901,
        "MessageRetentionPeriod": 59,
        "VisibilityTimeout": 43201,
        "ReceiveMessageWaitTimeSeconds": 21,
    }
    for name, value in refused.items():
        assert _messages(queue(**{name: value}), dr.sqs_queues) == [f"Invalid value for the parameter {name}."]
    assert _messages(queue(MessageRetentionPeriod=1_209_601), dr.sqs_queues) != []
    edges = {"DelaySeconds": 900, "MessageRetentionPeriod": 1_209_600, "VisibilityTimeout": 43200}
    assert _messages(queue(**edges), dr.sqs_queues) == []
    assert _messages(queue(QueueName="q" * 80), dr.sqs_queues) == []
    assert len(_messages(queue(QueueName="q" * 81), dr.sqs_queues)) == 1
    for count, ok in ((0, False), (1, True), (1000, True), (1001, False)):
        tpl = _tiny(
            {
                "D": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1_209_600}},
                "Q": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {
                        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["D", "Arn"]}, "maxReceiveCount": count}
                    },
                },
            }
        )
        assert (_messages(tpl, dr.sqs_queues) == []) is ok, count


def test_a_dead_letter_queue_keeping_messages_shorter_than_its_source_is_advised_against() -> None:
    tpl = _tiny(
        {
            "D": {"Type": "AWS::SQS::Queue", "Properties": {}},  # 4 days, SQS's default
            "Q": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "MessageRetentionPeriod": 1_209_600,
                    "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["D", "Arn"]}, "maxReceiveCount": 5},
                },
            },
        }
    )
    (advice,) = dr.sqs_queues(tpl, dr.Account())
    assert advice.advice
    assert advice.rule == "sqs.dlq-retention"


def test_event_source_mappings_within_lambda_ranges() -> None:
    def esm(**props: Any) -> list[str]:
        return _messages(_queue_and_consumer(360, 60, **props), dr.event_source_mappings)

    assert esm(BatchSize=11) == [
        "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
    ]
    assert esm(BatchSize=11, MaximumBatchingWindowInSeconds=1) == []
    assert esm(MaximumBatchingWindowInSeconds=301) != []
    for concurrency, ok in ((1, False), (2, True), (1000, True), (1001, False)):
        assert (esm(ScalingConfig={"MaximumConcurrency": concurrency}) == []) is ok, concurrency
    assert esm(FunctionResponseTypes=["ReportBatchItemFailures"]) == []
    assert esm(FunctionResponseTypes=["Everything"]) != []


def test_functions_within_lambda_quotas() -> None:
    def fn(**props: Any) -> list[str]:
        return _messages(_tiny({"F": _function(**props)}), dr.functions)

    for props in ({"Timeout": 0}, {"Timeout": 901}, {"MemorySize": 127}, {"MemorySize": 10241}):
        assert len(fn(**props)) == 1, props
    assert fn(Timeout=900, MemorySize=10240) == []
    assert fn(Timeout=1, MemorySize=128) == []
    assert fn(Description="d" * 257) != []
    assert fn(Environment={"Variables": {"AWS_REGION": "eu-west-1"}}) == [
        "Lambda was unable to configure your environment variables because the environment variables you have "
        "provided contains reserved keys that are currently not supported for modification. Reserved keys used in "
        "this request: AWS_REGION"
    ]


def test_a_function_environment_over_4_kb_is_refused() -> None:
    # {"AB":"<v>"} is 9 bytes of JSON around the value (a key has at least two characters)
    fits = {"Environment": {"Variables": {"AB": "v" * (4096 - 9)}}}
    over = {"Environment": {"Variables": {"AB": "v" * (4096 - 8)}}}
    assert _messages(_tiny({"F": _function(**fits)}), dr.functions) == []
    (refused,) = _messages(_tiny({"F": _function(**over)}), dr.functions)
    assert "exceeded the 4KB limit" in refused
    # references count with the length of what they resolve to (a queue URL, not "Ref Q")
    tpl = _tiny(
        {
            "Q": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "F": _function(Environment={"Variables": {"URL": {"Ref": "Q"}}}),
        }
    )
    url = tpl.properties("F")["Environment"]["Variables"]["URL"]
    assert url == "https://sqs.us-east-1.amazonaws.com/123456789012/tiny-Q-ABCDEFGHIJKL"
    assert dr.environment_size({"URL": url}) == len(json.dumps({"URL": url}, separators=(",", ":")))


def test_log_retention_among_the_allowed_values() -> None:
    def group(days: int) -> list[str]:
        return _messages(
            _tiny({"L": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": days}}}), dr.log_groups
        )

    assert group(30) == []
    assert group(3653) == []
    assert len(group(8)) == 1
    assert len(group(3650)) == 1


def test_schedules_use_the_singular_unit_for_one_and_the_plural_otherwise() -> None:
    def schedule(expression: str) -> list[str]:
        rule = {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": expression}}
        return _messages(_tiny({"R": rule}), dr.schedules)

    for good in ("rate(1 minute)", "rate(15 minutes)", "rate(1 day)", "cron(0 12 * * ? *)"):
        assert schedule(good) == [], good
    for bad in ("rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "cron(0 12 * * ?)"):
        assert schedule(bad) == ["Parameter ScheduleExpression is not valid."], bad


def test_rule_targets_within_eventbridge_limits() -> None:
    def target(**props: Any) -> list[str]:
        rule = {"Type": "AWS::Events::Rule", "Properties": {"Targets": [{"Id": "t", "Arn": "arn", **props}]}}
        return _messages(_tiny({"R": rule}), dr.rule_targets)

    assert target(RetryPolicy={"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}) == []
    assert target(RetryPolicy={"MaximumRetryAttempts": 186}) != []
    assert target(RetryPolicy={"MaximumEventAgeInSeconds": 59}) != []
    assert target(Input='{"task": "admission"}') == []
    assert target(Input="{task: admission}") != []
    assert target(Id="x" * 65) != []


def test_names_built_from_the_stack_name_fit() -> None:
    def alarm(name: str) -> list[str]:
        return _messages(
            _tiny({"A": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmName": name}}}), dr.other_names
        )

    assert alarm("a" * 255) == []
    assert alarm("a" * 256) != []
    dashboard = {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardName": "my/stack"}}
    assert _messages(_tiny({"D": dashboard}), dr.other_names) != []


def test_the_templates_own_rules_are_asserted() -> None:
    rules = {
        "NotEmpty": {
            "RuleCondition": {"Fn::Equals": [{"Ref": "Mode"}, "strict"]},
            "Assertions": [
                {"Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Name"}, ""]}]}, "AssertDescription": "Name!"}
            ],
        }
    }
    cfn: dict[str, Any] = {
        "Parameters": {"Mode": {"Type": "String", "Default": "strict"}, "Name": {"Type": "String", "Default": ""}},
        "Rules": rules,
        "Resources": {},
    }
    assert _messages(dr.resolve_template(cfn, {}, stack_name="s"), dr.template_rules) == ["Name!"]
    assert _messages(dr.resolve_template(cfn, {"Name": "n"}, stack_name="s"), dr.template_rules) == []
    assert _messages(dr.resolve_template(cfn, {"Mode": "lax"}, stack_name="s"), dr.template_rules) == []


def test_parameter_constraints_as_cloudformation_checks_them() -> None:
    cfn: dict[str, Any] = {
        "Parameters": {
            "N": {"Type": "Number", "Default": 5, "MinValue": 2, "MaxValue": 10},
            "S": {"Type": "String", "Default": "a/", "AllowedPattern": "^[a-z]+/$"},
            "V": {"Type": "String", "Default": "x", "AllowedValues": ["x", "y"]},
        },
        "Resources": {},
    }

    def refused(**params: str) -> list[str]:
        return _messages(dr.resolve_template(cfn, params, stack_name="s"), dr.parameter_constraints)

    assert refused() == []
    assert refused(N="1") == ["Parameter 'N' must be a number not less than 2"]
    assert refused(N="11") == ["Parameter 'N' must be a number not greater than 10"]
    assert refused(S="A/") == ["Parameter 'S' must match pattern ^[a-z]+/$"]
    assert refused(V="z") == ["Parameter 'V' must be one of AllowedValues"]


def test_a_refusal_reads_like_cloudformations_failed_create() -> None:
    violation = dr.Violation("lambda.sqs-visibility", "M", "Queue visibility timeout: 30 seconds ...", "Lambda docs")
    error = dr.DeployRefused("cutout", [violation])
    assert str(error).splitlines() == [
        "Queue visibility timeout: 30 seconds ...",
        "stack cutout: CREATE_FAILED M: Queue visibility timeout: 30 seconds ... (Lambda docs)",
    ]
    assert error.violations == [violation]
