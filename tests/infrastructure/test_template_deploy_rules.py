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
OUTPUT_KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/5678efgh-12ab-34cd-56ef-1234567890ab"
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
            # A separate output bucket under a key of its own, whenever the images bucket has one.
            "OutputBucketKmsKeyArn": OUTPUT_KMS_KEY if kms and output == OTHER_BUCKET else "",
            "DefaultBackgroundKey": background,
        }


def _id(params: dict[str, str]) -> str:
    return ",".join(f"{k}={v.replace(KMS_KEY, 'key').replace(OUTPUT_KMS_KEY, 'key2')!r}" for k, v in params.items())


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


def test_the_ingest_pattern_never_lets_the_stacks_own_prefixes_through(translated: TranslatedTemplate) -> None:
    # whole bucket watched, cutouts elsewhere: everything but the backgrounds
    elsewhere = _resolve(translated, InputPrefix="", ExistingBucketName=EXISTING_BUCKET, OutputBucketName=OTHER_BUCKET)
    assert _key_filter(elsewhere) == {"key": [{"anything-but": {"prefix": "backgrounds/"}}]}
    assert list(dr.event_patterns(elsewhere, dr.Account())) == []
    # whole bucket watched, cutouts in it: everything but the cutouts (the backgrounds are the submit's to skip:
    # EventBridge documents anything-but with one prefix only)
    same = _resolve(translated, InputPrefix="", ExistingBucketName=EXISTING_BUCKET, BackgroundPrefix="studio/")
    assert _key_filter(same) == {"key": [{"anything-but": {"prefix": "cutouts/"}}]}
    assert list(dr.event_patterns(same, dr.Account())) == []
    # an input prefix: only under it (a background nested under it is the submit's skip filter's to refuse)
    assert _key_filter(_resolve(translated)) == {"key": [{"prefix": "incoming/"}]}


def test_an_input_prefix_equal_to_the_background_prefix_is_refused(translated: TranslatedTemplate) -> None:
    # backgrounds are never submitted: such a stack would process nothing, so CloudFormation's Rules refuse it
    refused = dr.template_rules(_resolve(translated, InputPrefix="backgrounds/"), dr.Account())
    assert [(v.resource, v.message) for v in refused] == [
        ("BackgroundsAreNotUploads", "BackgroundPrefix must differ from InputPrefix (backgrounds are never cut out).")
    ]
    assert list(dr.template_rules(_resolve(translated, InputPrefix=""), dr.Account())) == []


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


def test_an_output_bucket_under_a_key_of_its_own_lets_finalize_generate_data_keys_only(
    translated: TranslatedTemplate,
) -> None:
    # given a separate output bucket under another customer managed key than the images bucket's
    params = {"OutputBucketName": OTHER_BUCKET, "BucketKmsKeyArn": KMS_KEY, "OutputBucketKmsKeyArn": OUTPUT_KMS_KEY}
    resolved = dr.resolve_template(translated.cfn, params, stack_name="c", region="eu-west-1")
    # then finalize (its single PutObject) may generate data keys with it, through S3 only, and nothing more
    (statement,) = [s for s in _statements(resolved, "FinalizeFunctionRole") if s.get("Sid") == "OutputBucketKey"]
    assert statement["Action"] == "kms:GenerateDataKey"
    assert statement["Resource"] == OUTPUT_KMS_KEY
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    # and no other role is given that key; the images bucket's key is granted as before
    for role in ("SubmitFunctionRole", "WebhookFunctionRole", "PollFunctionRole", "SweeperFunctionRole"):
        assert OUTPUT_KMS_KEY not in json.dumps(_statements(resolved, role))
    assert _statements(resolved, "FinalizeFunctionRole")[-2]["Sid"] == "BucketKey"
    # without the parameter, no statement at all
    without = dr.resolve_template(translated.cfn, {**params, "OutputBucketKmsKeyArn": ""}, stack_name="c")
    assert "OutputBucketKey" not in {s.get("Sid") for s in _statements(without, "FinalizeFunctionRole")}


def test_the_key_parameters_take_a_key_arn_or_nothing(translated: TranslatedTemplate) -> None:
    for name in ("BucketKmsKeyArn", "OutputBucketKmsKeyArn"):
        for value, accepted in ((KMS_KEY, True), ("", True), ("alias/images", False), ("1234abcd-12ab", False)):
            resolved = dr.resolve_template(translated.cfn, {name: value}, stack_name="c")
            refused = [v for v in dr.parameter_constraints(resolved, dr.Account()) if v.resource == name]
            assert (refused == []) is accepted, (name, value)


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


def test_a_queue_hiding_messages_less_than_six_times_its_consumers_timeout_is_advised_against() -> None:
    # at the timeout AWS accepts it, but recommends six times the timeout (shorter is cfn-lint's E3505, below)
    (advice,) = dr.sqs_visibility(_queue_and_consumer(60, 60), dr.Account())
    assert advice.advice
    assert advice.rule == "lambda.sqs-visibility-6x"
    assert list(dr.sqs_visibility(_queue_and_consumer(360, 60), dr.Account())) == []
    # SQS's and Lambda's defaults (30 s, 3 s) pass
    assert list(dr.sqs_visibility(_queue_and_consumer(None, None), dr.Account())) == []


def test_queue_names_and_redrive_within_sqs_limits() -> None:
    def queue(**props: Any) -> dr.ResolvedTemplate:
        return _tiny({"Q": {"Type": "AWS::SQS::Queue", "Properties": props}})

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


def test_a_batch_above_10_needs_a_batching_window() -> None:
    def esm(**props: Any) -> list[str]:
        return _messages(_queue_and_consumer(360, 60, **props), dr.event_source_mappings)

    assert esm(BatchSize=11) == [
        "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
    ]
    assert esm(BatchSize=11, MaximumBatchingWindowInSeconds=1) == []
    assert esm(BatchSize=10) == []


def test_function_memory_and_environment_keys_as_lambda_accepts_them() -> None:
    def fn(**props: Any) -> list[str]:
        return _messages(_tiny({"F": _function(**props)}), dr.functions)

    for props in ({"MemorySize": 127}, {"MemorySize": 10241}, {"Environment": {"Variables": {"1BAD": "x"}}}):
        assert len(fn(**props)) == 1, props
    assert fn(MemorySize=10240, Environment={"Variables": {"AB_1": "x"}}) == []
    assert fn(MemorySize=128) == []


def test_a_function_environment_over_4_kb_is_refused() -> None:
    # {"AB":"<v>"} is 9 bytes of JSON around the value (a key has at least two characters); cfn-lint's E3697 counts
    # keys and values only, so it lets these last bytes through
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


def test_constant_target_inputs_are_json() -> None:
    def target(**props: Any) -> list[str]:
        rule = {"Type": "AWS::Events::Rule", "Properties": {"Targets": [{"Id": "t", "Arn": "arn", **props}]}}
        return _messages(_tiny({"R": rule}), dr.target_inputs)

    assert target(Input='{"task": "admission"}') == []
    assert target(Input="{task: admission}") != []
    assert target() == []


def test_the_dashboard_name_built_from_the_stack_name_fits() -> None:
    def dashboard(name: str) -> list[str]:
        resource = {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardName": name}}
        return _messages(_tiny({"D": resource}), dr.other_names)

    assert dashboard("my-stack_1") == []
    assert dashboard("my/stack") != []
    assert dashboard("d" * 256) != []


# ----------------------------------------------------------------------------------------------- cfn-lint
def test_cfn_lint_accepts_the_resolved_template_of_every_combination(translated: TranslatedTemplate) -> None:
    # given the template resolved for every combination, for the longest stack name (merged: one lint of them all)
    resolved = [
        dr.resolve_template(translated.cfn, params, stack_name=LONGEST_STACK_NAME, region="eu-west-1")
        for params in COMBINATIONS
    ]
    # when cfn-lint checks them / then it finds nothing, not even a warning
    violations = dr.lint_resolved(resolved, region="eu-west-1")
    assert not violations, "\n".join(str(v) for v in violations)


def _lambda(**props: Any) -> dict[str, Any]:
    """A function as cfn-lint wants one whole (a role, code, a runtime)."""
    return _function(Role="arn:aws:iam::123456789012:role/r", Code={"ZipFile": "x"}, Runtime="python3.13", **props)


def _target(**props: Any) -> dict[str, Any]:
    return {"Id": "t", "Arn": "arn:aws:sqs:us-east-1:123456789012:q", **props}


def _events_rule(**props: Any) -> dict[str, Any]:
    return {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(5 minutes)", **props}}


def _consumer(visibility: int, timeout: int, **esm: Any) -> dict[str, Any]:
    return {
        "Q": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": visibility}},
        "F": _lambda(Timeout=timeout),
        "M": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Q", "Arn"]}, "FunctionName": {"Ref": "F"}, **esm},
        },
    }


_ALARM = {
    "ComparisonOperator": "GreaterThanThreshold",
    "EvaluationPeriods": 1,
    "Threshold": 1,
    "MetricName": "m",
    "Namespace": "n",
    "Period": 60,
    "Statistic": "Sum",
}

# What the hand-written rules checked until cfn-lint took it over: each bad resource, and the cfn-lint rule that
# refuses it now. Each case is one tiny template; they are linted together (one cfn-lint run), named by case.
CFN_LINT_REFUSES: dict[str, tuple[dict[str, Any], str]] = {
    "schedule 1 minutes": ({"R": _events_rule(ScheduleExpression="rate(1 minutes)")}, "E3027"),
    "schedule 5 minute": ({"R": _events_rule(ScheduleExpression="rate(5 minute)")}, "E3027"),
    "cron of five fields": ({"R": _events_rule(ScheduleExpression="cron(0 12 * * ?)")}, "E3027"),
    "rule name of 65": ({"R": _events_rule(Name="r" * 65)}, "E3033"),
    "rule description of 513": ({"R": _events_rule(Description="d" * 513)}, "E3033"),
    "six targets": ({"R": _events_rule(Targets=[_target(Id=f"t{i}") for i in range(6)])}, "E3032"),
    "target id": ({"R": _events_rule(Targets=[_target(Id="bad id!")])}, "E3031"),
    "retry attempts 186": ({"R": _events_rule(Targets=[_target(RetryPolicy={"MaximumRetryAttempts": 186})])}, "E3034"),
    "event age 59": ({"R": _events_rule(Targets=[_target(RetryPolicy={"MaximumEventAgeInSeconds": 59})])}, "E3034"),
    "timeout 901": ({"F": _lambda(Timeout=901)}, "E3717"),
    "timeout 0": ({"F": _lambda(Timeout=0)}, "E3034"),
    "description of 257": ({"F": _lambda(Description="d" * 257)}, "E3033"),
    "six layers": (
        {"F": _lambda(Layers=[f"arn:aws:lambda:us-east-1:123456789012:layer:l:{i}" for i in range(6)])},
        "E3032",
    ),
    "function name of 65": ({"F": _lambda(FunctionName="f" * 65)}, "E3031"),
    "reserved environment key": ({"F": _lambda(Environment={"Variables": {"AWS_REGION": "eu-west-1"}})}, "E3663"),
    "negative reservation": ({"F": _lambda(ReservedConcurrentExecutions=-1)}, "E3034"),
    "batch size 10001": (_consumer(360, 60, BatchSize=10001, MaximumBatchingWindowInSeconds=1), "E3034"),
    "batching window 301": (_consumer(360, 60, MaximumBatchingWindowInSeconds=301), "E3034"),
    "maximum concurrency 1": (_consumer(360, 60, ScalingConfig={"MaximumConcurrency": 1}), "E3034"),
    "maximum concurrency 1001": (_consumer(360, 60, ScalingConfig={"MaximumConcurrency": 1001}), "E3034"),
    "response types": (_consumer(360, 60, FunctionResponseTypes=["Everything"]), "E3030"),
    "visibility below the timeout": (_consumer(30, 60), "E3505"),
    "delay 901": ({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"DelaySeconds": 901}}}, "E3034"),
    "retention 59": ({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 59}}}, "E3034"),
    "retention 1209601": (
        {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1_209_601}}},
        "E3034",
    ),
    "visibility 43201": ({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 43201}}}, "E3034"),
    "wait 21": ({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"ReceiveMessageWaitTimeSeconds": 21}}}, "E3034"),
    "key reuse 59": ({"Q": {"Type": "AWS::SQS::Queue", "Properties": {"KmsDataKeyReusePeriodSeconds": 59}}}, "E3034"),
    "log retention 8": ({"L": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 8}}}, "E3030"),
    "log retention 3650": ({"L": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 3650}}}, "E3030"),
    "log group name": ({"L": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "bad name!"}}}, "E3031"),
    "alarm name of 256": (
        {"A": {"Type": "AWS::CloudWatch::Alarm", "Properties": {**_ALARM, "AlarmName": "a" * 256}}},
        "E3033",
    ),
    "secret name of 513": ({"S": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "s" * 513}}}, "E3033"),
}
# ... and their edges, which it accepts.
CFN_LINT_ACCEPTS: dict[str, dict[str, Any]] = {
    "schedules": {
        "R": _events_rule(ScheduleExpression="rate(1 minute)"),
        "S": _events_rule(ScheduleExpression="cron(0 12 * * ? *)", Targets=[_target(Id=f"t{i}") for i in range(5)]),
    },
    "function edges": {
        "F": _lambda(Timeout=900, MemorySize=10240, Environment={"Variables": {"AB": "v" * (4096 - 9)}})
    },
    "mapping edges": _consumer(
        60, 60, BatchSize=10000, MaximumBatchingWindowInSeconds=300, ScalingConfig={"MaximumConcurrency": 1000}
    ),
    "queue edges": {
        "Q": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"DelaySeconds": 900, "MessageRetentionPeriod": 1_209_600, "VisibilityTimeout": 43200},
        }
    },
    "names": {
        "A": {"Type": "AWS::CloudWatch::Alarm", "Properties": {**_ALARM, "AlarmName": "a" * 255}},
        "L": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 3653, "LogGroupName": "/aws/lambda/x"}},
    },
}


def _case_id(case: str) -> str:
    return "".join(word.capitalize() for word in case.replace("-", " ").split())


def _cased(resources: dict[str, Any], case: str) -> dr.ResolvedTemplate:
    """One case's resources under logical ids of its own, references renamed with them."""
    prefix = _case_id(case)
    text = json.dumps(resources)
    for logical_id in resources:
        text = text.replace(f'"{logical_id}"', f'"{prefix}{logical_id}"')
    return _tiny(json.loads(text))


@pytest.fixture(scope="module")
def cfn_lint_findings() -> dict[str, set[str]]:
    """Logical id -> the cfn-lint rules it broke, for every case above, from one cfn-lint run."""
    cases = {**{c: r for c, (r, _) in CFN_LINT_REFUSES.items()}, **CFN_LINT_ACCEPTS}
    found: dict[str, set[str]] = {}
    for violation in dr.lint_resolved([_cased(resources, case) for case, resources in cases.items()]):
        found.setdefault(violation.resource, set()).add(violation.rule.removeprefix("cfn-lint."))
    return found


@pytest.mark.parametrize("case", CFN_LINT_REFUSES)
def test_cfn_lint_refuses_what_the_hand_written_rules_refused(
    case: str, cfn_lint_findings: dict[str, set[str]]
) -> None:
    resources, rule = CFN_LINT_REFUSES[case]
    ids = {_case_id(case) + logical_id for logical_id in resources}
    broken = {rid for lid, rules in cfn_lint_findings.items() if lid in ids for rid in rules}
    assert rule in broken, f"{case}: cfn-lint found {broken or 'nothing'}"


def test_cfn_lint_accepts_the_edges(cfn_lint_findings: dict[str, set[str]]) -> None:
    ids = {_case_id(case) + logical_id for case, resources in CFN_LINT_ACCEPTS.items() for logical_id in resources}
    assert {lid: rules for lid, rules in cfn_lint_findings.items() if lid in ids} == {}


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
