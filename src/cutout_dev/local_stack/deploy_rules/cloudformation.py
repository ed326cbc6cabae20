"""CloudFormation's own refusals: template rules and parameter constraints."""

from __future__ import annotations

import re
from collections.abc import Iterator

from cutout_dev.local_stack.deploy_rules.model import (
    Account,
    ResolvedTemplate,
    Violation,
)

# ----------------------------------------------------------------------------------------------- CloudFormation
_PARAMETERS_DOC = 'AWS CloudFormation User Guide, "Parameters syntax" (AllowedPattern, AllowedValues, MinValue ...)'
_RULES_DOC = 'AWS CloudFormation User Guide, "Rules syntax"'


def template_rules(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """The template's own Rules: CloudFormation refuses the stack when an applicable assertion fails."""
    for name, applies, assertions in t.rules:
        if not applies:
            continue
        for holds, description in assertions:
            if not holds:
                yield Violation("cloudformation.rules", name, description, _RULES_DOC)


def parameter_constraints(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """Parameter values against their declared constraints, as CloudFormation checks them before creating."""
    for name, spec in t.parameter_specs.items():
        if name not in t.parameters:
            continue
        value = str(t.parameters[name])
        problem = None
        if "AllowedValues" in spec and value not in {str(v) for v in spec["AllowedValues"]}:
            problem = f"Parameter '{name}' must be one of AllowedValues"
        elif "AllowedPattern" in spec and not re.fullmatch(str(spec["AllowedPattern"]), value):
            problem = f"Parameter '{name}' must match pattern {spec['AllowedPattern']}"
        elif spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                problem = f"Parameter '{name}' must be a number"
            else:
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    problem = f"Parameter '{name}' must be a number not less than {spec['MinValue']}"
                elif "MaxValue" in spec and number > float(spec["MaxValue"]):
                    problem = f"Parameter '{name}' must be a number not greater than {spec['MaxValue']}"
        elif "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            problem = f"Parameter '{name}' must contain at most {spec['MaxLength']} characters"
        if problem is not None:
            yield Violation("cloudformation.parameter", name, problem, _PARAMETERS_DOC)
