"""cfn-lint over resolved templates: the refusals its resource schemas and rules already know (ranges, lengths,
patterns, enums, schedule expressions, reserved environment keys, the 4 KB environment, a queue hiding messages
shorter than its consumer runs), so that the hand-written rules keep only what cfn-lint does not check.

cfn-lint takes one template. One lint of the whole resolved template takes seconds, which is too slow for the local
stack's start and for every parameter combination of the template tests, so the resolved templates of all the
combinations are merged into one: each distinct resource once (a resource that differs between combinations once
per variant, under its logical id plus a number). A whole reference to another resource (``Ref``/``GetAtt``) is
written back as one, to that resource's first variant, so cfn-lint's checks that follow references (an event source
mapping's queue and function) still apply; a reference to a resource of another type that does not vary reads the
same in every variant.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cutout_dev.local_stack.deploy_rules.model import ResolvedTemplate, ResourceValue, Violation

_CFN_LINT_DOC = "cfn-lint {rule} ({description}), from the resource's CloudFormation schema or AWS's documented limits"


def _unresolve(value: Any, known: set[str]) -> Any:
    """Whole references to resources in the linted template back to Ref/GetAtt; anything else as resolved."""
    if isinstance(value, ResourceValue) and value.logical_id in known:
        if value.attribute is None:
            return {"Ref": value.logical_id}
        return {"Fn::GetAtt": [value.logical_id, value.attribute]}
    if isinstance(value, dict):
        return {k: _unresolve(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [_unresolve(v, known) for v in value]
    return value


def _variant_key(logical_id: str, body: dict[str, Any]) -> tuple[str, int]:
    """What makes two variants of a resource different to cfn-lint, and the size of its environment. Environment
    values are checked for their total size only (keys for their pattern), so variants that differ only in those
    values are one variant: the one with the largest environment stands for them all."""
    properties = dict(body["Properties"])
    variables = (properties.get("Environment") or {}).get("Variables")
    size = 0
    if isinstance(variables, dict):
        size = len(json.dumps(variables, default=str))
        properties["Environment"] = {**properties["Environment"], "Variables": sorted(variables)}
    return json.dumps([logical_id, body["Type"], properties], sort_keys=True, default=str), size


def merged(templates: Iterable[ResolvedTemplate]) -> tuple[dict[str, Any], dict[str, str]]:
    """One template holding every distinct resource of ``templates``; and each merged logical id's original id."""
    resources: dict[str, Any] = {}
    origin: dict[str, str] = {}
    seen: dict[str, tuple[str, int]] = {}  # variant key -> (merged id, environment size)
    for template in templates:
        known = set(template.resources)
        for logical_id, res in template.resources.items():
            body = {"Type": res["Type"], "Properties": _unresolve(res.get("Properties") or {}, known)}
            key, size = _variant_key(logical_id, body)
            if key in seen:
                merged_id, kept = seen[key]
                if size > kept:
                    resources[merged_id], seen[key] = body, (merged_id, size)
                continue
            variant = sum(1 for o in origin.values() if o == logical_id)
            merged_id = logical_id if variant == 0 else f"{logical_id}{variant + 1}"
            seen[key] = (merged_id, size)
            origin[merged_id] = logical_id
            resources[merged_id] = body
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}, origin


def lint_resolved(templates: Iterable[ResolvedTemplate], region: str = "us-east-1") -> list[Violation]:
    """What cfn-lint finds in the resolved ``templates``: its errors refused, its warnings advice."""
    from cfnlint.api import ManualArgs, lint

    template, origin = merged(templates)
    matches = lint(json.dumps(template, default=str), config=ManualArgs(regions=[region], ignore_checks=["I"]))
    violations = []
    for match in matches:
        path = [str(p) for p in getattr(match, "path", None) or []]
        merged_id = path[1] if len(path) > 1 and path[0] == "Resources" else "template"
        rule = match.rule.id
        source = _CFN_LINT_DOC.format(rule=rule, description=match.rule.shortdesc)
        violations.append(
            Violation(f"cfn-lint.{rule}", origin.get(merged_id, merged_id), match.message, source, rule[0] != "E")
        )
    return violations
