"""Deploy-time rules: what CloudFormation, Lambda, SQS and EventBridge refuse when a stack is created.

moto (and so the local stack) accepts templates that AWS refuses on the first ``sam deploy``: an empty object in an
event pattern, a reserved concurrency a new account cannot give, a queue whose visibility timeout is shorter than
its consumer's timeout. These rules are those refusals written down, each with the text AWS answers and the AWS
documentation it comes from, so that the same check runs twice: in the template tests over every parameter
combination that changes resources, and in the local stack's deploy, which refuses as CloudFormation would.

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

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cutout_dev.local_stack.intrinsics import ACCOUNT_ID, IntrinsicResolver, UnresolvableError

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


# ----------------------------------------------------------------------------------------------- resolving
# CloudFormation names what a template leaves unnamed "<stack>-<logical id>-<random suffix>", shortened to fit the
# service's limit (CloudFormation User Guide, "Name type"): generated names never exceed a limit, named ones may.
_SUFFIX = "ABCDEFGHIJKL"


def _generated_name(stack: str, logical_id: str, limit: int, *, lower: bool = False) -> str:
    base = f"{stack}-{logical_id}"[: limit - len(_SUFFIX) - 1]
    name = f"{base}-{_SUFFIX}"
    return name.lower() if lower else name


class _PhysicalValues:
    """Ref/GetAtt answers with AWS's shapes and lengths for the stack name (no AWS call: nothing exists yet)."""

    def __init__(self, cfn: Mapping[str, Any], stack_name: str, region: str) -> None:
        self._resources: Mapping[str, Any] = cfn.get("Resources") or {}
        self._stack = stack_name
        self._region = region
        self.resolver: IntrinsicResolver | None = None

    def _named(self, logical_id: str, prop: str, limit: int, *, lower: bool = False) -> str:
        props = self._resources[logical_id].get("Properties") or {}
        if prop in props and self.resolver is not None:
            return str(self.resolver.resolve(props[prop]))
        return _generated_name(self._stack, logical_id, limit, lower=lower)

    def _values(self, logical_id: str) -> dict[str | None, str]:
        if logical_id not in self._resources:
            raise UnresolvableError(f"unknown resource {logical_id}")
        kind = str(self._resources[logical_id].get("Type"))
        region, acct = self._region, ACCOUNT_ID
        arn = f"arn:aws:{{}}:{region}:{acct}:"
        if kind == QUEUE:
            name = self._named(logical_id, "QueueName", 80)
            url = f"https://sqs.{region}.amazonaws.com/{acct}/{name}"
            return {None: url, "Arn": arn.format("sqs") + name, "QueueName": name, "QueueUrl": url}
        if kind == "AWS::DynamoDB::Table":
            name = self._named(logical_id, "TableName", 255)
            table_arn = arn.format("dynamodb") + f"table/{name}"
            return {None: name, "Arn": table_arn, "StreamArn": f"{table_arn}/stream/2026-01-01T00:00:00.000"}
        if kind == "AWS::S3::Bucket":
            name = self._named(logical_id, "BucketName", 63, lower=True)
            return {
                None: name,
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
            }
        if kind == FUNCTION:
            name = self._named(logical_id, "FunctionName", 64)
            return {None: name, "Arn": arn.format("lambda") + f"function:{name}"}
        if kind == "AWS::SecretsManager::Secret":
            name = self._named(logical_id, "Name", 512)
            secret_arn = arn.format("secretsmanager") + f"secret:{name}-AbCdEf"
            return {None: secret_arn, "Id": secret_arn}
        if kind == "AWS::Lambda::Url":
            url = f"https://{'a' * 32}.lambda-url.{region}.on.aws/"
            return {None: url, "FunctionUrl": url, "FunctionArn": arn.format("lambda") + "function:url"}
        if kind == EVENTS_RULE:
            name = self._named(logical_id, "Name", 64)
            return {None: name, "Arn": arn.format("events") + f"rule/{name}"}
        if kind == "AWS::SNS::Topic":
            name = self._named(logical_id, "TopicName", 256)
            return {None: arn.format("sns") + name, "TopicArn": arn.format("sns") + name, "TopicName": name}
        if kind == "AWS::KMS::Key":
            key_id = "0123abcd-4567-89ef-0123-456789abcdef"
            return {None: key_id, "Arn": arn.format("kms") + f"key/{key_id}", "KeyId": key_id}
        if kind == LOG_GROUP:
            name = self._named(logical_id, "LogGroupName", 512)
            return {None: name, "Arn": arn.format("logs") + f"log-group:{name}:*"}
        if kind == "AWS::CloudWatch::Alarm":
            name = self._named(logical_id, "AlarmName", 255)
            return {None: name, "Arn": arn.format("cloudwatch") + f"alarm:{name}"}
        if kind == "AWS::IAM::Role":
            name = _generated_name(self._stack, logical_id, 64)
            return {None: name, "Arn": f"arn:aws:iam::{acct}:role/{name}", "RoleId": "AROA" + "A" * 17}
        if kind == "AWS::Lambda::LayerVersion":
            layer = arn.format("lambda") + f"layer:{_generated_name(self._stack, logical_id, 64)}:1"
            return {None: layer}
        name = _generated_name(self._stack, logical_id, 255)
        return {None: name, "Arn": arn.format("cloudformation") + name}

    def ref(self, logical_id: str) -> ResourceValue:
        return ResourceValue(self._values(logical_id)[None], logical_id)

    def get_att(self, logical_id: str, attribute: str) -> ResourceValue:
        values = self._values(logical_id)
        # An attribute not modelled here still resolves (to a plain ARN-shaped value): rules only follow links.
        text = values.get(attribute) or values.get("Arn") or values[None]
        return ResourceValue(text, logical_id, attribute)


def resolve_template(
    cfn: Mapping[str, Any], parameters: Mapping[str, Any], *, stack_name: str, region: str = "us-east-1"
) -> ResolvedTemplate:
    """``cfn`` (a translated template: no ``AWS::Serverless`` types left) as created for ``parameters``."""
    physical = _PhysicalValues(cfn, stack_name, region)
    resolver = IntrinsicResolver(
        cfn, parameters, region=region, stack_name=stack_name, ref=physical.ref, get_att=physical.get_att
    )
    physical.resolver = resolver
    resources: dict[str, dict[str, Any]] = {}
    for logical_id, res in (cfn.get("Resources") or {}).items():
        condition = res.get("Condition")
        if condition is not None and not resolver.condition(str(condition)):
            continue
        resources[logical_id] = {"Type": res.get("Type"), "Properties": resolver.resolve(res.get("Properties") or {})}
    rules: list[tuple[str, bool, list[tuple[bool, str]]]] = []
    for name, rule in (cfn.get("Rules") or {}).items():
        applies = bool(resolver.resolve(rule["RuleCondition"])) if "RuleCondition" in rule else True
        assertions = [
            (bool(resolver.resolve(a["Assert"])), str(a.get("AssertDescription", f"Rule {name} failed")))
            for a in rule.get("Assertions") or []
        ]
        rules.append((str(name), applies, assertions))
    return ResolvedTemplate(
        resources=resources,
        parameters=dict(resolver.parameters),
        parameter_specs={k: dict(v) for k, v in (cfn.get("Parameters") or {}).items()},
        rules=rules,
        stack_name=stack_name,
        region=region,
    )


# ----------------------------------------------------------------------------------------------- helpers
Rule = Callable[[ResolvedTemplate, Account], Iterable[Violation]]


def _int(value: Any, default: int) -> int:
    """A numeric property as CloudFormation passes it (numbers from parameters arrive as strings)."""
    if value is None:
        return default
    return int(str(value).strip())


def _range(
    rule: str, resource: str, name: str, value: Any, low: int, high: int, source: str, *, message: str | None = None
) -> Iterator[Violation]:
    if value is None:
        return
    number = _int(value, 0)
    if not low <= number <= high:
        bound = f"greater than or equal to {low}" if number < low else f"less than or equal to {high}"
        text = message or (
            f"1 validation error detected: Value '{number}' at '{name}' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )
        yield Violation(rule, resource, text, source)


def _linked(value: Any) -> str | None:
    return value.logical_id if isinstance(value, ResourceValue) else None


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
        yield from _range(
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
                yield from _range(
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


# ----------------------------------------------------------------------------------------------- Lambda
_CONCURRENCY_DOC = 'AWS Lambda Developer Guide, "Configuring reserved concurrency for a function"'


def reserved_concurrency(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """The stack's reservations must leave the account its minimum unreserved concurrency: 100, or the whole quota
    on accounts with a quota of 100 or less (new accounts: 10). Existing reservations elsewhere in the account
    only lower what is left: this counts the stack's own, the least AWS will refuse."""
    quota = account.concurrency_quota
    minimum = min(quota, UNRESERVED_MINIMUM)
    reservable = quota - minimum
    reserved = 0
    for logical_id, res in t.of_type(FUNCTION).items():
        value = res["Properties"].get("ReservedConcurrentExecutions")
        if value is None:
            continue
        number = _int(value, 0)
        if number < 0:
            yield from _range(
                "lambda.reserved-concurrency",
                logical_id,
                "reservedConcurrentExecutions",
                number,
                0,
                quota,
                _CONCURRENCY_DOC,
            )
            continue
        reserved += number
        if reserved > reservable:
            yield Violation(
                "lambda.reserved-concurrency",
                logical_id,
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{minimum}].",
                _CONCURRENCY_DOC + f" (account quota {quota}: at most {reservable} reservable)",
            )


def no_reservation_by_default(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """Cutout's own rule: with WebhookReservedConcurrency 0 (the default) no function reserves concurrency, so the
    first deploy succeeds on any account, a new one's quota of 10 included."""
    if "WebhookReservedConcurrency" not in t.parameters or _int(t.parameters["WebhookReservedConcurrency"], 0) != 0:
        return
    for logical_id, res in t.of_type(FUNCTION).items():
        if "ReservedConcurrentExecutions" in res["Properties"]:
            yield Violation(
                "cutout.no-reservation-by-default",
                logical_id,
                "ReservedConcurrentExecutions is set although WebhookReservedConcurrency is 0: a first deploy on an "
                "account with a small quota is refused.",
                _CONCURRENCY_DOC,
            )


_QUOTAS_DOC = 'AWS Lambda Developer Guide, "Lambda quotas"'
_ENV_DOC = 'AWS Lambda Developer Guide, "Working with Lambda environment variables" (and "Lambda quotas": 4 KB)'
_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ENV_KEY = re.compile(r"^[a-zA-Z]\w+$")
# Defined runtime environment variables Lambda does not let a function set ("Working with Lambda environment
# variables", "Defined runtime environment variables": the reserved ones).
RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
ENVIRONMENT_LIMIT_BYTES = 4096


def environment_size(variables: Mapping[str, Any]) -> int:
    """Bytes Lambda counts against the 4 KB limit: its refusal quotes the variables as one JSON object ("String
    measured: {...}"), so the JSON text of the map is what is measured."""
    return len(json.dumps({k: str(v) for k, v in variables.items()}, separators=(",", ":")).encode())


def functions(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """Timeout 1..900 s, memory 128..10,240 MB, description <= 256, <= 5 layers, names, and the environment:
    <= 4 KB in all, valid keys, none of the reserved ones."""
    for logical_id, res in t.of_type(FUNCTION).items():
        props = res["Properties"]
        yield from _range("lambda.timeout", logical_id, "timeout", props.get("Timeout"), 1, 900, _QUOTAS_DOC)
        yield from _range("lambda.memory", logical_id, "memorySize", props.get("MemorySize"), 128, 10240, _QUOTAS_DOC)
        yield from _range(
            "lambda.description", logical_id, "description", len(str(props.get("Description", ""))), 0, 256, _QUOTAS_DOC
        )
        yield from _range("lambda.layers", logical_id, "layers", len(props.get("Layers") or []), 0, 5, _QUOTAS_DOC)
        if "FunctionName" in props and not _FUNCTION_NAME.match(str(props["FunctionName"])):
            yield Violation(
                "lambda.function-name",
                logical_id,
                f"1 validation error detected: Value '{props['FunctionName']}' at 'functionName' failed to satisfy "
                "constraint: Member must have length less than or equal to 64",
                _QUOTAS_DOC,
            )
        variables = (props.get("Environment") or {}).get("Variables") or {}
        reserved = sorted(set(variables) & RESERVED_ENV_KEYS)
        if reserved:
            yield Violation(
                "lambda.environment-reserved",
                logical_id,
                "Lambda was unable to configure your environment variables because the environment variables you have "
                "provided contains reserved keys that are currently not supported for modification. Reserved keys "
                f"used in this request: {', '.join(reserved)}",
                _ENV_DOC,
            )
        for key in variables:
            if not _ENV_KEY.match(str(key)):
                yield Violation(
                    "lambda.environment-key",
                    logical_id,
                    f"1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: "
                    f"Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
                    f"[a-zA-Z]([a-zA-Z0-9_])+] ({key!r})",
                    _ENV_DOC,
                )
        size = environment_size(variables)
        if size > ENVIRONMENT_LIMIT_BYTES:
            yield Violation(
                "lambda.environment-size",
                logical_id,
                "Lambda was unable to configure your environment variables because the environment variables you have "
                f"provided exceeded the 4KB limit. String measured: {size} bytes",
                _ENV_DOC,
            )


_ESM_DOC = 'AWS Lambda API Reference, "CreateEventSourceMapping" and "ScalingConfig"'
_SQS_ESM_DOC = 'AWS Lambda Developer Guide, "Creating and configuring an Amazon SQS event source mapping"'


def event_source_mappings(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """SQS mappings: batch size 1..10,000 and above 10 only with a batching window, window 0..300 s, maximum
    concurrency 2..1,000, partial batch responses the only response type."""
    for logical_id, res in t.of_type(ESM).items():
        props = res["Properties"]
        queue = _linked(props.get("EventSourceArn"))
        if queue is None or t.resources.get(queue, {}).get("Type") != QUEUE:
            continue
        batch = _int(props.get("BatchSize"), 10)
        window = _int(props.get("MaximumBatchingWindowInSeconds"), 0)
        yield from _range("lambda.esm-batch-size", logical_id, "batchSize", batch, 1, 10000, _ESM_DOC)
        yield from _range(
            "lambda.esm-batching-window", logical_id, "maximumBatchingWindowInSeconds", window, 0, 300, _ESM_DOC
        )
        if batch > 10 and window < 1:
            yield Violation(
                "lambda.esm-batch-size",
                logical_id,
                "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
                _SQS_ESM_DOC,
            )
        scaling = props.get("ScalingConfig") or {}
        yield from _range(
            "lambda.esm-maximum-concurrency",
            logical_id,
            "scalingConfig.maximumConcurrency",
            scaling.get("MaximumConcurrency"),
            2,
            1000,
            _ESM_DOC,
        )
        for kind in props.get("FunctionResponseTypes") or []:
            if kind != "ReportBatchItemFailures":
                yield Violation(
                    "lambda.esm-response-types",
                    logical_id,
                    f"1 validation error detected: Value '[{kind}]' at 'functionResponseTypes' failed to satisfy "
                    "constraint: Member must satisfy enum value set: [ReportBatchItemFailures]",
                    _ESM_DOC,
                )


def sqs_visibility(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """A mapping's queue must hide a message at least as long as the function may run (Lambda refuses the mapping
    otherwise), and AWS recommends six times the function timeout so a throttled batch can be retried."""
    for logical_id, res in t.of_type(ESM).items():
        props = res["Properties"]
        queue, function = _linked(props.get("EventSourceArn")), _linked(props.get("FunctionName"))
        if queue is None or function is None or t.resources.get(queue, {}).get("Type") != QUEUE:
            continue
        if t.resources.get(function, {}).get("Type") != FUNCTION:
            continue
        timeout = _int(t.properties(function).get("Timeout"), 3)
        visibility = _int(t.properties(queue).get("VisibilityTimeout"), 30)
        if visibility < timeout:
            yield Violation(
                "lambda.sqs-visibility",
                logical_id,
                f"Invalid request provided: Queue visibility timeout: {visibility} seconds is less than Function "
                f"timeout: {timeout} seconds",
                _SQS_ESM_DOC,
            )
        elif visibility < 6 * timeout:
            yield Violation(
                "lambda.sqs-visibility-6x",
                logical_id,
                f"Queue {queue} visibility timeout {visibility} s is less than six times {function}'s timeout "
                f"({6 * timeout} s), AWS's recommendation so that Lambda can retry a throttled batch",
                _SQS_ESM_DOC,
                advice=True,
            )


# ----------------------------------------------------------------------------------------------- SQS
_SQS_DOC = 'Amazon SQS API Reference, "CreateQueue" (queue attributes and QueueName)'
_REDRIVE_DOC = 'Amazon SQS Developer Guide, "Using dead-letter queues in Amazon SQS"'
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_QUEUE_RANGES = (
    ("DelaySeconds", 0, 900),
    ("MessageRetentionPeriod", 60, 1_209_600),
    ("VisibilityTimeout", 0, 43_200),
    ("ReceiveMessageWaitTimeSeconds", 0, 20),
    ("KmsDataKeyReusePeriodSeconds", 60, 86_400),
)
DEFAULT_RETENTION = 345_600  # 4 days, SQS's default


def sqs_queues(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """Attribute ranges, queue names <= 80 characters, redrive maxReceiveCount 1..1,000 (and a dead-letter queue
    that keeps messages longer than its source: SQS keeps a message's original enqueue time, so a shorter
    retention deletes redriven messages early; advice)."""
    for logical_id, res in t.of_type(QUEUE).items():
        props = res["Properties"]
        for name, low, high in _QUEUE_RANGES:
            yield from _range(
                "sqs.attribute",
                logical_id,
                name,
                props.get(name),
                low,
                high,
                _SQS_DOC,
                message=f"Invalid value for the parameter {name}.",
            )
        fifo = str(props.get("FifoQueue", "false")).lower() == "true"
        queue_name = str(props.get("QueueName", "")) or None
        if queue_name is not None:
            base = queue_name.removesuffix(".fifo") if fifo else queue_name
            if not _QUEUE_NAME.match(base) or len(queue_name) > 80:
                yield Violation(
                    "sqs.queue-name",
                    logical_id,
                    "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
                    _SQS_DOC,
                )
        redrive = props.get("RedrivePolicy")
        if isinstance(redrive, str):
            redrive = json.loads(redrive)
        if not redrive:
            continue
        count = _int(redrive.get("maxReceiveCount"), 0)
        if not 1 <= count <= 1000:
            yield Violation(
                "sqs.max-receive-count",
                logical_id,
                f'Value {{"maxReceiveCount":"{count}"}} for parameter RedrivePolicy is invalid. Reason: Invalid '
                f"value for maxReceiveCount: {count}, valid values are from 1 to 1000 both inclusive.",
                _REDRIVE_DOC,
            )
        dlq = _linked(redrive.get("deadLetterTargetArn"))
        if dlq is not None and t.resources.get(dlq, {}).get("Type") == QUEUE:
            source_retention = _int(props.get("MessageRetentionPeriod"), DEFAULT_RETENTION)
            dlq_retention = _int(t.properties(dlq).get("MessageRetentionPeriod"), DEFAULT_RETENTION)
            if dlq_retention < source_retention:
                yield Violation(
                    "sqs.dlq-retention",
                    logical_id,
                    f"dead-letter queue {dlq} keeps messages {dlq_retention} s, less than {logical_id}'s "
                    f"{source_retention} s: redriven messages expire early",
                    _REDRIVE_DOC,
                    advice=True,
                )


# ----------------------------------------------------------------------------------------------- logs, names
_LOGS_DOC = 'Amazon CloudWatch Logs API Reference, "PutRetentionPolicy" and "CreateLogGroup"'
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
_LOG_GROUP_NAME = re.compile(r"^[\.\-_/#A-Za-z0-9]{1,512}$")


def log_groups(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """RetentionInDays among CloudWatch Logs' values; log group names 1..512 of its characters."""
    for logical_id, res in t.of_type(LOG_GROUP).items():
        props = res["Properties"]
        if "RetentionInDays" in props and _int(props["RetentionInDays"], 0) not in RETENTION_DAYS:
            yield Violation(
                "logs.retention",
                logical_id,
                f"1 validation error detected: Value '{props['RetentionInDays']}' at 'retentionInDays' failed to "
                f"satisfy constraint: Member must satisfy enum value set: [{', '.join(map(str, RETENTION_DAYS))}]",
                _LOGS_DOC,
            )
        if "LogGroupName" in props and not _LOG_GROUP_NAME.match(str(props["LogGroupName"])):
            yield Violation(
                "logs.log-group-name",
                logical_id,
                f"1 validation error detected: Value '{props['LogGroupName']}' at 'logGroupName' failed to satisfy "
                "constraint: Member must have length less than or equal to 512 and match [\\.\\-_/#A-Za-z0-9]+",
                _LOGS_DOC,
            )


_NAMES_DOC = (
    'Amazon CloudWatch API Reference, "PutMetricAlarm" and "PutDashboard"; AWS Secrets Manager API Reference, '
    '"CreateSecret"'
)
_DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def other_names(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """Names the template builds from the stack name: alarms (<= 255), the dashboard (<= 255 of A-Z a-z 0-9 - _),
    secrets (<= 512)."""
    checks: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
        ("AWS::CloudWatch::Alarm", "AlarmName", lambda n: 1 <= len(n) <= 255),
        ("AWS::CloudWatch::Dashboard", "DashboardName", lambda n: bool(_DASHBOARD_NAME.match(n))),
        ("AWS::SecretsManager::Secret", "Name", lambda n: 1 <= len(n) <= 512),
    )
    for kind, prop, valid in checks:
        for logical_id, res in t.of_type(kind).items():
            name = res["Properties"].get(prop)
            if name is not None and not valid(str(name)):
                yield Violation(
                    "names.length",
                    logical_id,
                    f"1 validation error detected: Value '{name}' at '{prop}' failed to satisfy constraint",
                    _NAMES_DOC,
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


# ----------------------------------------------------------------------------------------------- the checks
# What the resources themselves are refused for: the local stack runs these at deploy.
RESOURCE_RULES: tuple[Rule, ...] = (
    event_patterns,
    schedules,
    rule_targets,
    reserved_concurrency,
    no_reservation_by_default,
    functions,
    event_source_mappings,
    sqs_visibility,
    sqs_queues,
    log_groups,
    other_names,
    template_rules,
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
