"""EventBridge's refusals cfn-lint does not make: event patterns, constant target inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from cutout_dev.local_stack.deploy_rules.model import (
    EVENTS_RULE,
    Account,
    ResolvedTemplate,
    Violation,
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


_TARGETS_DOC = 'Amazon EventBridge API Reference, "Target" (Input: "Valid JSON text passed to the target")'


def target_inputs(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """A target's constant Input is JSON text of at most 8,192 characters. (Schedule expressions, rule names and
    descriptions, the number of targets, their ids and retry policies are cfn-lint's: lint.py.)"""
    for logical_id, res in t.of_type(EVENTS_RULE).items():
        for target in res["Properties"].get("Targets") or []:
            if "Input" not in target:
                continue
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
