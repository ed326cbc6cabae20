"""template.yaml: the flood defences (issue 11) — the in-flight limit, the bounded public webhook, their alarms."""

from __future__ import annotations

from cutout.admission import MAX_SLOTS

from tests.unit.test_template import load_template, props, resources


def _alarm(metric: str) -> dict:
    (alarm,) = [
        r["Properties"]
        for r in resources("AWS::CloudWatch::Alarm").values()
        if r["Properties"].get("MetricName") == metric
    ]
    return dict(alarm)


def test_the_in_flight_limit_is_a_parameter_bounded_by_one_batch_read() -> None:
    param = load_template()["Parameters"]["MaxJobsInFlight"]
    assert param["Type"] == "Number"
    assert param["Default"] == 3  # the Creator plan's concurrent generations
    assert param["MinValue"] == 1
    assert param["MaxValue"] == MAX_SLOTS


def test_the_public_webhook_cannot_take_the_accounts_concurrency() -> None:
    # The reservation is sized from the plan limit, with the reasoning next to it.
    assert props("WebhookFunction")["ReservedConcurrentExecutions"] == {"Ref": "MaxJobsInFlight"}
    assert props("WebhookFunction")["FunctionUrlConfig"]["AuthType"] == "NONE"


def test_refused_webhooks_raise_an_alarm_on_their_rate() -> None:
    alarm = _alarm("WebhookRejected")  # the metric the webhook emits per refusal
    assert alarm["Namespace"] == "Cutout"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "cutout"}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] > 0
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_repaired_slots_raise_an_alarm() -> None:
    alarm = _alarm("SlotsRepaired")
    assert alarm["Namespace"] == "Cutout"
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
