"""EventBridge's refusals: event patterns, schedule expressions, rule targets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from cutout_dev.local_stack.deploy_rules.model import (
    EVENTS_RULE,
    Account,
    ResolvedTemplate,
    Violation,
    out_of_range,
)

# ----------------------------------------------------------------------------------------------- EventBridge
_PATTERNS_DOC = 'Amazon EventBridge User Guide, "Creating event patterns" (event pattern syntax)'


def _pattern_problems(value: Any, key: str | None) -> Iterator[str]:
    """EventBridge's reasons for refusing a pattern: empty objects or arrays anywhere, and leaves that are not
    arrays (every field's value is an object of fields or an array of values/matchers)."""
    if isinstance(value, dict):
        if not value:
            yield "Event pattern is not valid. Reason: Empty objects are not allowed"
        for k, v in value.items():
            yield from _pattern_problems(v, str(k))
    elif isinstance(value, list):
        if not value:
            yield "Event pattern is not valid. Reason: Empty arrays are not allowed"
        for item in value:
            if isinstance(item, dict):  # a matcher: {"prefix": ...}, {"anything-but": ...}, {"exists": ...}
                if not item:
                    yield "Event pattern is not valid. Reason: Empty objects are not allowed"
                for matcher in item.values():
                    if isinstance(matcher, (dict, list)) and not matcher:
                        kind = "objects" if isinstance(matcher, dict) else "arrays"
                        yield f"Event pattern is not valid. Reason: Empty {kind} are not allowed"
            elif isinstance(item, list):
                yield f'Event pattern is not valid. Reason: "{key}" must be an object or an array of values'
    else:
        yield f'Event pattern is not valid. Reason: "{key}" must be an object or an array'


def event_patterns(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """No empty object or array anywhere in a pattern, every leaf a non-empty array (PutRule refuses the rest)."""
    for logical_id, res in t.of_type(EVENTS_RULE).items():
        pattern = res["Properties"].get("EventPattern")
        if pattern is None:
            continue
        if isinstance(pattern, str):
            pattern = json.loads(pattern)
        if not isinstance(pattern, dict):
            yield Violation("eventbridge.pattern", logical_id, "Event pattern is not valid.", _PATTERNS_DOC)
            continue
        for problem in dict.fromkeys(_pattern_problems(pattern, None)):
            yield Violation("eventbridge.pattern", logical_id, problem, _PATTERNS_DOC)


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_SCHEDULE_DOC = 'Amazon EventBridge User Guide, "Creating a rule that runs on a schedule" (schedule expressions)'


def schedules(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """rate(N unit): N a positive integer, the unit singular exactly when N is 1; cron() has six fields."""
    for logical_id, res in t.of_type(EVENTS_RULE).items():
        expression = res["Properties"].get("ScheduleExpression")
        if expression is None:
            continue
        text = str(expression)
        valid = False
        rate = _RATE.match(text)
        if rate is not None:
            value, unit = int(rate.group(1)), rate.group(2)
            valid = value >= 1 and (value == 1) == (not unit.endswith("s"))
        elif text.startswith("cron(") and text.endswith(")"):
            valid = len(text[5:-1].split()) == 6
        if not valid:
            yield Violation(
                "eventbridge.schedule", logical_id, "Parameter ScheduleExpression is not valid.", _SCHEDULE_DOC
            )


_TARGET_ID = re.compile(r"^[\.\-_A-Za-z0-9]{1,64}$")
_RULE_NAME = re.compile(r"^[\.\-_A-Za-z0-9]{1,64}$")
_TARGETS_DOC = 'Amazon EventBridge API Reference, "PutRule", "PutTargets", "Target" and "RetryPolicy"'


def rule_targets(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """Rule names and descriptions, at most 5 targets, their ids, retry policies and constant inputs."""
    for logical_id, res in t.of_type(EVENTS_RULE).items():
        props = res["Properties"]
        if "Name" in props and not _RULE_NAME.match(str(props["Name"])):
            yield Violation(
                "eventbridge.rule-name",
                logical_id,
                f"1 validation error detected: Value '{props['Name']}' at 'name' failed to satisfy constraint: "
                "Member must have length less than or equal to 64 and match [\\.\\-_A-Za-z0-9]+",
                _TARGETS_DOC,
            )
        yield from out_of_range(
            "eventbridge.rule-description",
            logical_id,
            "description",
            len(str(props.get("Description", ""))),
            0,
            512,
            _TARGETS_DOC,
        )
        targets = props.get("Targets") or []
        if len(targets) > 5:
            yield Violation(
                "eventbridge.targets",
                logical_id,
                "The requested resource exceeds the maximum number allowed.",
                _TARGETS_DOC,
            )
        for target in targets:
            target_id = str(target.get("Id", ""))
            if not _TARGET_ID.match(target_id):
                yield Violation(
                    "eventbridge.target-id",
                    logical_id,
                    f"1 validation error detected: Value '{target_id}' at 'targets.1.member.id' failed to satisfy "
                    "constraint: Member must have length less than or equal to 64 and match [\\.\\-_A-Za-z0-9]+",
                    _TARGETS_DOC,
                )
            retry = target.get("RetryPolicy") or {}
            for name, low, high in (("MaximumRetryAttempts", 0, 185), ("MaximumEventAgeInSeconds", 60, 86400)):
                member = name[0].lower() + name[1:]
                yield from out_of_range(
                    "eventbridge.retry-policy",
                    logical_id,
                    f"targets.1.member.retryPolicy.{member}",
                    retry.get(name),
                    low,
                    high,
                    _TARGETS_DOC,
                )
            if "Input" in target:
                text = str(target["Input"])
                try:
                    json.loads(text)
                    valid = len(text) <= 8192
                except ValueError:
                    valid = False
                if not valid:
                    yield Violation(
                        "eventbridge.target-input",
                        logical_id,
                        "Input is not valid JSON text of at most 8192 characters.",
                        _TARGETS_DOC,
                    )
