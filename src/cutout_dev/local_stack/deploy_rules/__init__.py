"""Deploy-time rules: what CloudFormation, Lambda, SQS and EventBridge refuse when a stack is created.

moto (and so the local stack) accepts templates that AWS refuses on the first ``sam deploy``: an empty object in an
event pattern, a reserved concurrency a new account cannot give, a queue whose visibility timeout is shorter than
its consumer's timeout. What cfn-lint already checks (resource schemas: ranges, lengths, patterns,
enums; schedule expressions; reserved environment keys; a queue hiding messages shorter
than its consumer runs) it checks on the resolved templates of every parameter combination the template tests
cover (lint.py: one lint of them all, merged, since one lint takes seconds). The rest are written here, each with
the text AWS answers and the AWS documentation it comes from, and run twice: in the template tests over every
combination, and in the local stack's deploy, which refuses as CloudFormation would.

The rules are pure functions of a *resolved* template (``resolve_template``): the translated CloudFormation
template with its conditions evaluated, resources whose condition is false removed, and every ``Ref``/``Fn::*`` of
parameters and pseudo parameters resolved. A reference to a resource becomes a ``ResourceValue``: a string as
long as the physical value AWS would give it for that stack name (a queue URL, an ARN, a generated name), so that
sizes and lengths are realistic, which also remembers the logical id it stands for, so that rules can follow links
(an event source mapping to its queue).

Where AWS only recommends (the 6x visibility timeout, a dead-letter queue that keeps messages longer than its
source), the violation is ``advice``: the template must keep it, but AWS would not refuse the stack.
"""

from __future__ import annotations

from collections.abc import Iterable

from cutout_dev.local_stack.deploy_rules.cloudformation import parameter_constraints, template_rules
from cutout_dev.local_stack.deploy_rules.events import event_patterns, target_inputs
from cutout_dev.local_stack.deploy_rules.lambdas import (
    ENVIRONMENT_LIMIT_BYTES,
    environment_size,
    event_source_mappings,
    functions,
    no_reservation_by_default,
    reserved_concurrency,
    sqs_visibility,
)
from cutout_dev.local_stack.deploy_rules.lint import lint_resolved
from cutout_dev.local_stack.deploy_rules.model import (
    DEFAULT_CONCURRENCY_QUOTA,
    ESM,
    EVENTS_RULE,
    FUNCTION,
    LOG_GROUP,
    QUEUE,
    UNRESERVED_MINIMUM,
    Account,
    ResolvedTemplate,
    ResourceValue,
    Rule,
    Violation,
    as_int,
    linked,
    out_of_range,
)
from cutout_dev.local_stack.deploy_rules.names import other_names
from cutout_dev.local_stack.deploy_rules.prefixes import renditions_prefix
from cutout_dev.local_stack.deploy_rules.resolve import resolve_template
from cutout_dev.local_stack.deploy_rules.sqs import DEFAULT_RETENTION, sqs_queues

# ----------------------------------------------------------------------------------------------- the checks
# What cfn-lint does not check (lint.py runs it on resolved templates in the template tests): the local stack runs
# these at deploy, in milliseconds; each names the AWS document it follows.
RESOURCE_RULES: tuple[Rule, ...] = (
    event_patterns,
    target_inputs,
    reserved_concurrency,
    no_reservation_by_default,
    functions,
    event_source_mappings,
    sqs_visibility,
    sqs_queues,
    other_names,
    template_rules,
    renditions_prefix,
)
# Plus the parameter constraints: the template tests check them; the local stack does not, as it deliberately
# passes values AWS would never see (a loopback http:// Magic Hour URL, second-long poll bounds).
ALL_RULES: tuple[Rule, ...] = (*RESOURCE_RULES, parameter_constraints)


def check(
    template: ResolvedTemplate, account: Account | None = None, *, rules: Iterable[Rule] = ALL_RULES
) -> list[Violation]:
    """Every violation of ``rules`` in ``template`` for ``account`` (AWS's default quota unless given)."""
    acct = account or Account()
    return [violation for rule in rules for violation in rule(template, acct)]


class DeployRefused(RuntimeError):
    """What CloudFormation answers a stack AWS refuses: CREATE_FAILED with the service's message."""

    def __init__(self, stack_name: str, violations: list[Violation]) -> None:
        self.stack_name = stack_name
        self.violations = violations
        first = violations[0]
        lines = [f"stack {stack_name}: CREATE_FAILED {v.resource}: {v.message} ({v.source})" for v in violations]
        super().__init__(f"{first.message}\n" + "\n".join(lines))


__all__ = [
    "ALL_RULES",
    "DEFAULT_CONCURRENCY_QUOTA",
    "DEFAULT_RETENTION",
    "ENVIRONMENT_LIMIT_BYTES",
    "ESM",
    "EVENTS_RULE",
    "FUNCTION",
    "LOG_GROUP",
    "QUEUE",
    "RESOURCE_RULES",
    "UNRESERVED_MINIMUM",
    "Account",
    "DeployRefused",
    "ResolvedTemplate",
    "ResourceValue",
    "Rule",
    "Violation",
    "as_int",
    "check",
    "environment_size",
    "event_patterns",
    "event_source_mappings",
    "functions",
    "linked",
    "lint_resolved",
    "no_reservation_by_default",
    "other_names",
    "out_of_range",
    "parameter_constraints",
    "renditions_prefix",
    "reserved_concurrency",
    "resolve_template",
    "sqs_queues",
    "sqs_visibility",
    "target_inputs",
    "template_rules",
]
