"""What the deploy rules work on and return: a resolved template, the account, a violation; shared helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

FUNCTION = "AWS::Lambda::Function"
QUEUE = "AWS::SQS::Queue"
ESM = "AWS::Lambda::EventSourceMapping"
EVENTS_RULE = "AWS::Events::Rule"
LOG_GROUP = "AWS::Logs::LogGroup"

# AWS's default Lambda concurrency quota per Region (Lambda Developer Guide, "Lambda quotas": concurrent
# executions 1,000); new accounts start far lower (10), which is what refuses reservations.
DEFAULT_CONCURRENCY_QUOTA = 1000
# Lambda keeps this many executions unreserved for functions without a reservation, or the whole quota when the
# quota is this or less (Lambda Developer Guide, "Configuring reserved concurrency for a function": "You can
# reserve up to the Unreserved account concurrency value minus 100").
UNRESERVED_MINIMUM = 100


@dataclass(frozen=True)
class Violation:
    """One thing AWS refuses (or, with ``advice``, recommends against) in a resolved template."""

    rule: str  # e.g. "eventbridge.pattern-empty"
    resource: str  # logical id
    message: str  # what AWS answers (CloudFormation shows it as the resource's CREATE_FAILED reason)
    source: str  # the AWS documentation the rule comes from
    advice: bool = False  # a recommendation, not a refusal

    def __str__(self) -> str:
        kind = "advice" if self.advice else "refused"
        return f"{self.resource}: {self.message} [{kind}: {self.rule}; {self.source}]"


@dataclass(frozen=True)
class Account:
    """What the rules need to know of the account they deploy to."""

    concurrency_quota: int = DEFAULT_CONCURRENCY_QUOTA


class ResourceValue(str):
    """The physical value of a resource reference (``Ref X`` or ``GetAtt X.attr``), remembering what it refers to."""

    logical_id: str
    attribute: str | None

    def __new__(cls, text: str, logical_id: str, attribute: str | None = None) -> ResourceValue:
        value = super().__new__(cls, text)
        value.logical_id = logical_id
        value.attribute = attribute
        return value


@dataclass(frozen=True)
class ResolvedTemplate:
    """A template as CloudFormation would create it for one set of parameter values and one stack name."""

    resources: dict[str, dict[str, Any]]  # logical id -> {"Type", "Properties"} (properties resolved)
    parameters: dict[str, Any]  # effective values (given or default)
    parameter_specs: dict[str, dict[str, Any]]
    rules: list[tuple[str, bool, list[tuple[bool, str]]]]  # Rules: name, applies, [(assertion holds, description)]
    stack_name: str
    region: str

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == resource_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[logical_id].get("Properties") or {}
        return props


Rule = Callable[[ResolvedTemplate, Account], Iterable[Violation]]


def as_int(value: Any, default: int) -> int:
    """A numeric property as CloudFormation passes it (numbers from parameters arrive as strings)."""
    if value is None:
        return default
    return int(str(value).strip())


def out_of_range(
    rule: str, resource: str, name: str, value: Any, low: int, high: int, source: str, *, message: str | None = None
) -> Iterator[Violation]:
    if value is None:
        return
    number = as_int(value, 0)
    if not low <= number <= high:
        bound = f"greater than or equal to {low}" if number < low else f"less than or equal to {high}"
        text = message or (
            f"1 validation error detected: Value '{number}' at '{name}' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )
        yield Violation(rule, resource, text, source)


def linked(value: Any) -> str | None:
    return value.logical_id if isinstance(value, ResourceValue) else None
