"""Lambda's refusals: reserved concurrency, function settings and environment, event source mappings, and the
visibility timeout SQS needs against its consumer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from cutout_dev.local_stack.deploy_rules.model import (
    ESM,
    FUNCTION,
    QUEUE,
    UNRESERVED_MINIMUM,
    Account,
    ResolvedTemplate,
    Violation,
    as_int,
    linked,
    out_of_range,
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
        number = as_int(value, 0)
        if number < 0:
            yield from out_of_range(
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
    if "WebhookReservedConcurrency" not in t.parameters or as_int(t.parameters["WebhookReservedConcurrency"], 0) != 0:
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
        yield from out_of_range("lambda.timeout", logical_id, "timeout", props.get("Timeout"), 1, 900, _QUOTAS_DOC)
        yield from out_of_range(
            "lambda.memory", logical_id, "memorySize", props.get("MemorySize"), 128, 10240, _QUOTAS_DOC
        )
        yield from out_of_range(
            "lambda.description", logical_id, "description", len(str(props.get("Description", ""))), 0, 256, _QUOTAS_DOC
        )
        yield from out_of_range(
            "lambda.layers", logical_id, "layers", len(props.get("Layers") or []), 0, 5, _QUOTAS_DOC
        )
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
        queue = linked(props.get("EventSourceArn"))
        if queue is None or t.resources.get(queue, {}).get("Type") != QUEUE:
            continue
        batch = as_int(props.get("BatchSize"), 10)
        window = as_int(props.get("MaximumBatchingWindowInSeconds"), 0)
        yield from out_of_range("lambda.esm-batch-size", logical_id, "batchSize", batch, 1, 10000, _ESM_DOC)
        yield from out_of_range(
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
        yield from out_of_range(
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
        queue, function = linked(props.get("EventSourceArn")), linked(props.get("FunctionName"))
        if queue is None or function is None or t.resources.get(queue, {}).get("Type") != QUEUE:
            continue
        if t.resources.get(function, {}).get("Type") != FUNCTION:
            continue
        timeout = as_int(t.properties(function).get("Timeout"), 3)
        visibility = as_int(t.properties(queue).get("VisibilityTimeout"), 30)
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
