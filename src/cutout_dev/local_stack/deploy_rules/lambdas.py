"""Lambda's refusals cfn-lint does not make: reserved concurrency against the account, memory, environment keys,
the batching window of large SQS batches, and the visibility timeout AWS recommends against the consumer's."""

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
        reserved += max(as_int(value, 0), 0)  # a negative one is cfn-lint's (E3034)
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


_QUOTAS_DOC = 'AWS Lambda Developer Guide, "Lambda quotas" (memory: 128 MB to 10,240 MB)'
_ENV_DOC = 'AWS Lambda Developer Guide, "Working with Lambda environment variables" (and "Lambda quotas": 4 KB)'
_ENV_KEY = re.compile(r"^[a-zA-Z]\w+$")
ENVIRONMENT_LIMIT_BYTES = 4096


def environment_size(variables: Mapping[str, Any]) -> int:
    """Bytes Lambda counts against the 4 KB limit: its refusal quotes the variables as one JSON object ("String
    measured: {...}"), so the JSON text of the map is what is measured. (cfn-lint's E3697 counts keys and values
    only, and lets through the last few bytes Lambda refuses.)"""
    return len(json.dumps({k: str(v) for k, v in variables.items()}, separators=(",", ":")).encode())


def functions(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """Memory 128..10,240 MB (cfn-lint checks only the lower bound), environment keys Lambda accepts, and the
    environment within 4 KB as Lambda measures it. The timeout, description, layers, name and reserved keys are
    cfn-lint's (lint.py)."""
    for logical_id, res in t.of_type(FUNCTION).items():
        props = res["Properties"]
        yield from out_of_range(
            "lambda.memory", logical_id, "memorySize", props.get("MemorySize"), 128, 10240, _QUOTAS_DOC
        )
        variables = (props.get("Environment") or {}).get("Variables") or {}
        size = environment_size(variables)
        if size > ENVIRONMENT_LIMIT_BYTES:
            yield Violation(
                "lambda.environment-size",
                logical_id,
                "Lambda was unable to configure your environment variables because the environment variables you have "
                f"provided exceeded the 4KB limit. String measured: {size} bytes",
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


_ESM_DOC = 'AWS Lambda API Reference, "CreateEventSourceMapping" and "ScalingConfig"'
_SQS_ESM_DOC = 'AWS Lambda Developer Guide, "Creating and configuring an Amazon SQS event source mapping"'


def event_source_mappings(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """An SQS mapping batching more than 10 records needs a batching window. (The ranges of batch size, window and
    maximum concurrency, and the response types, are cfn-lint's: lint.py.)"""
    for logical_id, res in t.of_type(ESM).items():
        props = res["Properties"]
        queue = linked(props.get("EventSourceArn"))
        if queue is None or t.resources.get(queue, {}).get("Type") != QUEUE:
            continue
        if as_int(props.get("BatchSize"), 10) > 10 and as_int(props.get("MaximumBatchingWindowInSeconds"), 0) < 1:
            yield Violation(
                "lambda.esm-batch-size",
                logical_id,
                "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
                _SQS_ESM_DOC,
            )


def sqs_visibility(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """AWS recommends a queue hiding a message six times its consumer's timeout, so a throttled batch can be
    retried (advice). Shorter than the timeout itself Lambda refuses: cfn-lint's E3505 (lint.py)."""
    for logical_id, res in t.of_type(ESM).items():
        props = res["Properties"]
        queue, function = linked(props.get("EventSourceArn")), linked(props.get("FunctionName"))
        if queue is None or function is None or t.resources.get(queue, {}).get("Type") != QUEUE:
            continue
        if t.resources.get(function, {}).get("Type") != FUNCTION:
            continue
        timeout = as_int(t.properties(function).get("Timeout"), 3)
        visibility = as_int(t.properties(queue).get("VisibilityTimeout"), 30)
        if visibility < 6 * timeout:
            yield Violation(
                "lambda.sqs-visibility-6x",
                logical_id,
                f"Queue {queue} visibility timeout {visibility} s is less than six times {function}'s timeout "
                f"({6 * timeout} s), AWS's recommendation so that Lambda can retry a throttled batch",
                _SQS_ESM_DOC,
                advice=True,
            )
