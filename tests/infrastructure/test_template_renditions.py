"""template.yaml's renditions parts: the function's least-privilege role, its queue and DLQ fed by a rule on
"Cutout Completed", the presets parameter, the imaging layer on this function alone, the prefix rules."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cutout.domain.errors import InvalidEnvironment
from cutout.runtime.config import Settings

from cutout_dev.local_stack import deploy_rules as dr
from cutout_dev.local_stack.template import TranslatedTemplate, translate
from tests.infrastructure.test_template import (
    ROOT,
    TEMPLATE,
    _as_list,
    function_environment,
    load_template,
    policy_statements,
    props,
    resources,
)

FUNCTION = "RenditionsFunction"


def _grants() -> dict[str, list[dict[str, Any]]]:
    grants: dict[str, list[dict[str, Any]]] = {}
    for statement in policy_statements(FUNCTION):
        for action in _as_list(statement["Action"]):
            grants.setdefault(action, []).append(statement)
    return grants


def test_the_role_reads_cutouts_and_originals_writes_renditions_and_nothing_more() -> None:
    grants = _grants()
    # the whole role: no queue sends, no secrets, no deletes, no index queries, no Magic Hour anything
    assert set(grants) == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "ssm:GetParameter",
        "events:PutEvents",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    # job items only (32-character ids), never a counter item
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
        (statement,) = grants[action]
        assert statement["Resource"] == {"Fn::GetAtt": ["JobsTable", "Arn"]}
        assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["?" * 32]}}
    # writes under the renditions prefix only; reads of cutouts (output prefix) and of the originals (input prefix)
    (write,) = grants["s3:PutObject"]
    assert "${RenditionsPrefix}*" in json.dumps(write["Resource"])
    reads = {json.dumps(s["Resource"]) for s in grants["s3:GetObject"]}
    assert len(reads) == 2
    assert any("${OutputPrefix}*" in r for r in reads) and any("${InputPrefix}*" in r for r in reads)
    assert all("${RenditionsPrefix}" not in r and '"*"' not in r for r in reads)
    # its one parameter, its bus, the bucket key only through S3
    (ssm,) = grants["ssm:GetParameter"]
    assert ssm["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PresetsParameter}"
    }
    (events,) = grants["events:PutEvents"]
    assert "event-bus/${EventBusName}" in json.dumps(events["Resource"])
    (kms,) = grants["kms:Decrypt"]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}}


def test_a_rule_on_cutout_completed_feeds_the_renditions_queue_with_a_dlq() -> None:
    rule = props("RenditionsRule")
    assert rule["EventPattern"] == {"source": ["cutout"], "detail-type": ["Cutout Completed"]}
    assert rule["EventBusName"] == {"Ref": "EventBusName"}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["RenditionsQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["RenditionsDLQ", "Arn"]}
    # only this rule may send to the queue
    (statement,) = props("RenditionsQueuePolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["RenditionsRule", "Arn"]}}}
    # one cutout decoded at a time, failures reported per message
    (event,) = props(FUNCTION)["Events"].values()
    assert event["Type"] == "SQS" and event["Properties"]["Queue"] == {"Fn::GetAtt": ["RenditionsQueue", "Arn"]}
    assert event["Properties"]["BatchSize"] == 1
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_presets_store_starts_empty_and_is_named_in_the_outputs() -> None:
    parameter = props("PresetsParameter")
    assert resources()["PresetsParameter"]["Type"] == "AWS::SSM::Parameter"
    assert parameter["Type"] == "String" and json.loads(parameter["Value"]) == {}
    assert parameter["Name"] == {"Fn::Sub": "/${AWS::StackName}/cutout/presets"}
    outputs = load_template()["Outputs"]
    assert outputs["PresetsParameterName"]["Value"] == {"Ref": "PresetsParameter"}
    assert function_environment(FUNCTION)["PRESETS_PARAMETER"] == {"Ref": "PresetsParameter"}
    for name in ("RenditionsQueueUrl", "RenditionsDLQUrl", "RenditionsDLQArn", "RenditionsFunctionName"):
        assert name in outputs


def test_memory_is_sized_for_the_largest_cutout_decoded() -> None:
    # given the pixel limit the function decodes up to
    fn = props(FUNCTION)
    pixels = int(function_environment(FUNCTION)["MAX_RENDITION_PIXELS"])
    decoded_mb = pixels * 4 / 2**20  # RGBA
    max_output_mb = int(load_template()["Parameters"]["MaxOutputBytes"]["Default"]) / 2**20
    # then what a run measured at its peak (~7 decoded copies: 1.02 GB RSS for 40 MP), the compressed cutout and the
    # runtime (~150 MB) fit the memory
    assert 7 * decoded_mb + max_output_mb + 150 < fn["MemorySize"]
    # ... and the code's own default is the same limit
    assert Settings.from_env({"JOBS_TABLE": "t"}).max_rendition_pixels == pixels


def test_the_imaging_layer_is_built_from_arm64_wheels_and_used_by_this_function_alone() -> None:
    layer = resources()["ImagingLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/imaging/"
    makefile = (ROOT / "layers" / "imaging" / "Makefile").read_text(encoding="utf-8")
    assert "build-ImagingLayer:" in makefile
    for flag in ("--only-binary=:all:", "--python-version 3.13", "--implementation cp", "manylinux2014_aarch64"):
        assert flag in makefile
    requirements = (ROOT / "layers" / "imaging" / "requirements.txt").read_text(encoding="utf-8")
    assert [line for line in requirements.splitlines() if line and not line.startswith("#")] == ["pillow==13.0.0"]
    users = [
        k
        for k, v in resources("AWS::Serverless::Function").items()
        if {"Ref": "ImagingLayer"} in v["Properties"]["Layers"]
    ]
    assert users == [FUNCTION]


def test_the_submit_skips_the_renditions_prefix() -> None:
    assert function_environment("SubmitFunction")["RENDITIONS_PREFIX"] == {"Ref": "RenditionsPrefix"}


# ----------------------------------------------------------------------------------------------- prefixes
@pytest.fixture(scope="module")
def translated() -> TranslatedTemplate:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return translate(TEMPLATE, {})


def _refusals(translated: TranslatedTemplate, **params: str) -> list[str]:
    resolved = dr.resolve_template(translated.cfn, params, stack_name="cutout")
    return [v.message for v in dr.check(resolved, rules=dr.RESOURCE_RULES)]


@pytest.mark.parametrize(
    ("params", "refused"),
    [
        ({}, False),
        ({"RenditionsPrefix": "cutouts/"}, True),  # the template's own rule: equal to the output prefix
        ({"RenditionsPrefix": "incoming/"}, True),  # ... to the input prefix (same bucket)
        ({"RenditionsPrefix": "backgrounds/"}, True),
        ({"RenditionsPrefix": "cutouts/renditions/"}, True),  # nested: Cutout's own deploy rule
        ({"RenditionsPrefix": "incoming/renditions/"}, True),
        ({"OutputPrefix": "renditions/cutouts/"}, True),  # around another prefix
        ({"InputPrefix": "", "RenditionsPrefix": "renditions/"}, False),  # whole bucket: the skip filter
        ({"OutputBucketName": "acme-cutouts", "RenditionsPrefix": "incoming/"}, False),  # another bucket
        ({"OutputBucketName": "acme-cutouts", "RenditionsPrefix": "cutouts/r/"}, True),
    ],
)
def test_the_renditions_prefix_never_overlaps_the_others(
    translated: TranslatedTemplate, params: dict[str, str], refused: bool
) -> None:
    assert bool(_refusals(translated, **params)) == refused, _refusals(translated, **params)


def test_the_function_refuses_an_overlap_at_cold_start_too() -> None:
    env = {"JOBS_TABLE": "t", "SOURCE_BUCKET": "b", "OUTPUT_PREFIX": "cutouts/", "RENDITIONS_PREFIX": "cutouts/r/"}
    with pytest.raises(InvalidEnvironment, match="RENDITIONS_PREFIX 'cutouts/r/' overlaps OUTPUT_PREFIX"):
        Settings.from_env(env)
    assert Settings.from_env({**env, "RENDITIONS_PREFIX": "renditions/"}).renditions_prefix == "renditions/"


def test_the_dlq_has_an_alarm_and_the_dashboard_shows_the_renditions() -> None:
    alarm = props("RenditionsDLQAlarm")
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["RenditionsDLQ", "QueueName"]}}]
    body = props("OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    for metric in ("RenditionsMade", "RenditionsFailed", "RenditionTime", "${RenditionsDLQ.QueueName}"):
        assert metric in body


def test_local_paths_exist() -> None:
    assert (Path(ROOT) / "functions" / "renditions" / "app.py").is_file()
