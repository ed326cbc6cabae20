"""IAM identity-policy evaluation, as AWS documents it, for the local stack's enforcement.

Why our own evaluator: moto's IAM enforcement (``INITIAL_NO_AUTH_ACTION_COUNT``) checks the action only — for
most services it authorises against resource ``*`` and it evaluates no condition operator but ``StringEquals`` in
trust policies — while Cutout's least privilege lives in resource ARNs (table vs ``/index/*``, queue, secret,
``bucket/prefix*``) and in condition keys (``dynamodb:LeadingKeys``). No maintained Python library evaluates
identity policies offline (policyuniverse and parliament match or lint ARNs; they do not decide requests), so this
module implements the part of AWS's "Policy evaluation logic" that applies to one account's identity-based
policies with no boundaries, SCPs or session policies:

* an explicit ``Deny`` in any matching statement wins; otherwise a matching ``Allow`` allows; otherwise the
  request is implicitly denied;
* a statement matches when its ``Action``/``NotAction``, ``Resource``/``NotResource`` and every ``Condition``
  match ("IAM JSON policy elements": Action, NotAction, Resource, NotResource, Condition);
* ``*`` and ``?`` are wildcards; actions compare case-insensitively, resources case-sensitively;
* condition operators (the "IAM JSON policy elements: Condition operators" page): ``String*``, ``Arn*``, ``Bool``,
  ``Numeric*``, ``Null``, each with ``...IfExists``; the set qualifiers ``ForAllValues:`` (true when the request has
  no value for the key) and ``ForAnyValue:`` ("Single-valued vs. multivalued context keys"). Several values of one
  key are ORed, several keys and operators ANDed.

A policy that uses an operator or a condition key this module does not know is refused when it is loaded
(``PolicyError``): an unknown condition must never pass silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# The condition keys the local stack can fill in from a request (requests.py). A policy using any other key fails
# to load, rather than being evaluated as if the key were absent.
KNOWN_CONDITION_KEYS = frozenset({"dynamodb:leadingkeys", "s3:prefix", "kms:viaservice", "aws:securetransport"})

_STRING_OPS = {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"}
_LIKE_OPS = {"StringLike", "StringNotLike", "ArnLike", "ArnNotLike", "ArnEquals", "ArnNotEquals"}
_NUMERIC_OPS = {
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
}
_OPERATORS = _STRING_OPS | _LIKE_OPS | _NUMERIC_OPS | {"Bool", "Null"}


class PolicyError(ValueError):
    """A policy this evaluator cannot evaluate faithfully."""


@cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


@dataclass(frozen=True)
class Request:
    """One authorisation question: may the principal do ``action`` on ``resource`` with these context keys?

    ``context`` maps lower-cased condition keys to their values (a tuple: multivalued keys such as
    ``dynamodb:LeadingKeys`` carry every value)."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Statement:
    """One statement of one policy, with where it came from (for the decision log and the mutation check)."""

    policy: str
    sid: str
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (operator, lower-cased key, values)

    @classmethod
    def parse(cls, policy: str, index: int, raw: Mapping[str, Any]) -> Statement:
        effect = str(raw.get("Effect", ""))
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"{policy}[{index}]: Effect must be Allow or Deny, not {effect!r}")
        if ("Action" in raw) == ("NotAction" in raw):
            raise PolicyError(f"{policy}[{index}]: exactly one of Action / NotAction")
        if ("Resource" in raw) == ("NotResource" in raw):
            raise PolicyError(f"{policy}[{index}]: exactly one of Resource / NotResource")
        conditions: list[tuple[str, str, tuple[str, ...]]] = []
        for operator, block in (raw.get("Condition") or {}).items():
            base = operator.split(":", 1)[-1].removesuffix("IfExists")
            if base not in _OPERATORS:
                raise PolicyError(f"{policy}[{index}]: condition operator {operator} is not evaluated locally")
            for key, values in block.items():
                if key.lower() not in KNOWN_CONDITION_KEYS:
                    raise PolicyError(f"{policy}[{index}]: condition key {key} is not filled in locally")
                conditions.append((operator, key.lower(), tuple(str(v) for v in _as_list(values))))
        return cls(
            policy=policy,
            sid=str(raw.get("Sid") or f"#{index}"),
            effect=effect,
            actions=tuple(str(a) for a in _as_list(raw.get("Action", []))),
            not_actions=tuple(str(a) for a in _as_list(raw.get("NotAction", []))),
            resources=tuple(str(r) for r in _as_list(raw.get("Resource", []))),
            not_resources=tuple(str(r) for r in _as_list(raw.get("NotResource", []))),
            conditions=tuple(conditions),
        )

    def matching_actions(self, action: str) -> tuple[str, ...]:
        """The Action entries that grant ``action`` (empty: the statement does not cover it)."""
        if self.not_actions:
            hit = any(glob_match(p, action, ignore_case=True) for p in self.not_actions)
            return () if hit else ("NotAction",)
        return tuple(p for p in self.actions if glob_match(p, action, ignore_case=True))

    def covers_resource(self, resource: str) -> bool:
        if self.not_resources:
            return not any(glob_match(p, resource) for p in self.not_resources)
        return any(glob_match(p, resource) for p in self.resources)

    def conditions_hold(self, context: Mapping[str, tuple[str, ...]]) -> bool:
        return all(_condition(op, key, values, context) for op, key, values in self.conditions)

    def matches(self, request: Request) -> tuple[str, ...]:
        """The Action entries through which this statement applies to ``request`` (empty: it does not)."""
        actions = self.matching_actions(request.action)
        if actions and self.covers_resource(request.resource) and self.conditions_hold(request.context):
            return actions
        return ()


def _compare(operator: str, expected: str, actual: str) -> bool:
    base = operator.removesuffix("IfExists")
    if base in ("StringEquals", "StringNotEquals"):
        return expected == actual
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return expected.lower() == actual.lower()
    if base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike", "ArnEquals", "ArnNotEquals"):
        return glob_match(expected, actual)
    if base == "Bool":
        return expected.lower() == actual.lower()
    if base.startswith("Numeric"):
        e, a = float(expected), float(actual)
        return {
            "NumericEquals": a == e,
            "NumericNotEquals": a == e,
            "NumericLessThan": a < e,
            "NumericLessThanEquals": a <= e,
            "NumericGreaterThan": a > e,
            "NumericGreaterThanEquals": a >= e,
        }[base]
    raise PolicyError(f"operator {operator}")


def _negated(operator: str) -> bool:
    return "Not" in operator.removesuffix("IfExists") and operator.removesuffix("IfExists") != "Null"


def _single(operator: str, expected: Sequence[str], actual: str) -> bool:
    """One request value against the statement's values (ORed); a negated operator is true when none match."""
    hit = any(_compare(operator, e, actual) for e in expected)
    return not hit if _negated(operator) else hit


def _condition(operator: str, key: str, expected: Sequence[str], context: Mapping[str, tuple[str, ...]]) -> bool:
    qualifier, _, base = operator.rpartition(":")
    actual = context.get(key)
    if base == "Null":
        # "Null": true means the key must be absent.
        return (actual is None or not actual) == (expected[0].lower() == "true")
    if qualifier == "ForAllValues":
        # True when every request value matches, and (documented pitfall) when the request has none.
        return all(_single(base, expected, v) for v in actual or ())
    if qualifier == "ForAnyValue":
        return any(_single(base, expected, v) for v in actual or ())
    if actual is None or not actual:
        return base.endswith("IfExists")
    return all(_single(base, expected, v) for v in actual)


@dataclass(frozen=True)
class Grant:
    """What allowed a request: one statement, through one of its Action entries."""

    policy: str
    sid: str
    action: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool
    grants: tuple[Grant, ...]  # every Allow statement/action that matched


@dataclass(frozen=True)
class Policies:
    """Every statement attached to one principal (its role's inline and managed policies)."""

    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, documents: Iterable[tuple[str, Mapping[str, Any]]]) -> Policies:
        statements: list[Statement] = []
        for name, document in documents:
            for index, raw in enumerate(_as_list(document.get("Statement", []))):
                statements.append(Statement.parse(name, index, raw))
        return cls(tuple(statements))

    def decide(self, request: Request) -> Decision:
        grants: list[Grant] = []
        for statement in self.statements:
            actions = statement.matches(request)
            if not actions:
                continue
            if statement.effect == "Deny":
                return Decision(False, True, ())
            grants.extend(Grant(statement.policy, statement.sid, a) for a in actions)
        return Decision(bool(grants), False, tuple(grants))

    def allows(self, request: Request) -> bool:
        return self.decide(request).allowed
