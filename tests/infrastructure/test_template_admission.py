"""template.yaml: the flood defences — the in-flight limit, the bounded public webhook, their alarms."""

from __future__ import annotations

from cutout.domain.models import MAX_SLOTS

from tests.infrastructure.test_template import load_template, props, resources


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


def test_the_public_webhooks_reservation_is_a_choice_off_by_default() -> None:
    # A reservation caps what a flood can take, but Lambda refuses one an account's quota cannot give (a new
    # account's 10): it is the operator's choice, none by default (deploy_rules checks both ways).
    assert props("WebhookFunction")["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasWebhookReservation", {"Ref": "WebhookReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert load_template()["Conditions"]["HasWebhookReservation"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookReservedConcurrency"}, 0]}]
    }
    assert load_template()["Parameters"]["WebhookReservedConcurrency"]["Default"] == 0
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
