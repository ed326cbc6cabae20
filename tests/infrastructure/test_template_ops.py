"""template.yaml's operator surface: the outputs `cutout` reads, alarm names it can find, and the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cutout.domain.models import JobStatus

from cutout_dev.ops.target import FUNCTIONS, QUEUE_PAIRS
from tests.support.template import load_template

ROOT = Path(__file__).resolve().parents[2]
SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


def _resources(kind: str) -> dict[str, Any]:
    return {k: v for k, v in load_template()["Resources"].items() if v["Type"] == kind}


def _outputs() -> dict[str, Any]:
    return {k: v["Value"] for k, v in load_template()["Outputs"].items()}


def _emitted_metrics() -> set[str]:
    """Metric names the code emits through observability.count("Name", ...) and timing("Name", ms)."""
    names: set[str] = set()
    for path in [*ROOT.glob("layers/shared/cutout/**/*.py"), *ROOT.glob("functions/*/app.py")]:
        names.update(re.findall(r'(?:count|timing)\(\s*"([A-Za-z_]+)"', path.read_text(encoding="utf-8")))
    # count(f"Jobs_{status.value}") for every failure a job can end in
    names.update(f"Jobs_{s.value}" for s in JobStatus)
    return names


def _dashboard() -> tuple[dict[str, Any], list[str]]:
    """The dashboard body as CloudFormation would render it (placeholders for the ${...} it substitutes)."""
    (dash,) = _resources("AWS::CloudWatch::Dashboard").values()
    body = dash["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    variables = SUB_VAR.findall(body)
    return json.loads(SUB_VAR.sub(lambda m: f"<{m.group(1)}>", body)), variables


def test_every_alarm_is_named_under_the_stack_so_status_finds_it_by_prefix() -> None:
    alarms = _resources("AWS::CloudWatch::Alarm")
    assert alarms
    for logical_id, alarm in alarms.items():
        name = alarm["Properties"]["AlarmName"]
        assert name == {"Fn::Sub": "${AWS::StackName}/" + logical_id.removesuffix("Alarm")}
    assert _outputs()["AlarmNamePrefix"] == {"Fn::Sub": "${AWS::StackName}/"}


@pytest.mark.parametrize(("dlq", "source"), sorted(QUEUE_PAIRS.items()))
def test_each_dlq_and_its_source_queue_are_output_with_url_and_arn_for_redrive(dlq: str, source: str) -> None:
    outputs = _outputs()
    resources = load_template()["Resources"]
    for queue in (dlq, source):
        assert outputs[f"{queue}Url"] == {"Ref": queue}
        assert outputs[f"{queue}Arn"] == {"Fn::GetAtt": [queue, "Arn"]}
    # The pairing the CLI assumes is the template's redrive policy.
    policy = resources[source]["Properties"]["RedrivePolicy"]
    assert policy["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_functions_log_group_is_output_for_logs_insights(function: str) -> None:
    props = load_template()["Resources"][f"{function}Function"]["Properties"]
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert _outputs()[f"{function}LogGroupName"] == {"Ref": log_group}


def test_the_dashboard_is_output_with_its_console_url() -> None:
    (dash,) = _resources("AWS::CloudWatch::Dashboard").values()
    assert dash["Properties"]["DashboardName"] == {"Ref": "AWS::StackName"}
    url = _outputs()["DashboardUrl"]["Fn::Sub"]
    assert url.endswith("#dashboards/dashboard/${AWS::StackName}")


def test_the_dashboard_body_is_json_and_refers_only_to_resources_of_the_stack() -> None:
    _, variables = _dashboard()
    resources = load_template()["Resources"]
    for variable in variables:
        logical_id = variable.partition(".")[0]
        assert logical_id == "AWS::Region" or logical_id in resources, variable


def test_the_dashboard_shows_the_operators_first_picture() -> None:
    body, _ = _dashboard()
    widgets = body["widgets"]
    titles = " | ".join(w["properties"]["title"] for w in widgets)
    for words in ("uploads", "creates", "completions", "failures", "in flight", "p50", "p95", "Credits per hour"):
        assert words in titles, words
    metrics = [m for w in widgets for m in w["properties"].get("metrics", [])]
    # DLQ depths: every DLQ
    dlq_names = {m[3] for m in metrics if isinstance(m[0], str) and m[1] == "ApproximateNumberOfMessagesVisible"}
    assert {f"<{q}.QueueName>" for q in QUEUE_PAIRS} <= dlq_names
    # Credits per hour: the submit's CreditsCharged metric summed per hour
    (credits,) = [w for w in widgets if w["properties"]["title"] == "Credits per hour"]
    assert credits["properties"]["period"] == 3600
    assert credits["properties"]["metrics"][0][:2] == ["Cutout", "CreditsCharged"]
    # Latency: the finalize function's latency_seconds log field, percentiles 50 and 95
    (latency,) = [w for w in widgets if w["type"] == "log"]
    query = latency["properties"]["query"]
    assert "SOURCE '<FinalizeLogGroup>'" in query
    assert "pct(latency_seconds, 50)" in query
    assert "pct(latency_seconds, 95)" in query
    # The alarm widget lists every alarm
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    assert {f"<{a}.Arn>" for a in _resources("AWS::CloudWatch::Alarm")} == set(alarm_widget["properties"]["alarms"])


def test_the_dashboards_custom_metrics_are_ones_the_code_emits() -> None:
    body, _ = _dashboard()
    emitted = _emitted_metrics()
    custom = {
        m[1]
        for w in body["widgets"]
        for m in w["properties"].get("metrics", [])
        if isinstance(m[0], str) and m[0] == "Cutout"
    }
    assert custom
    assert custom <= emitted, custom - emitted
    assert all(
        m[2:4] == ["service", "cutout"]
        for w in body["widgets"]
        for m in w["properties"].get("metrics", [])
        if m[0] == "Cutout"
    )
