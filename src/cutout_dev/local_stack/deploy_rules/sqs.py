"""SQS's refusals cfn-lint does not make: queue names and redrive policies."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from cutout_dev.local_stack.deploy_rules.model import (
    QUEUE,
    Account,
    ResolvedTemplate,
    Violation,
    as_int,
    linked,
)

# ----------------------------------------------------------------------------------------------- SQS
_SQS_DOC = 'Amazon SQS API Reference, "CreateQueue" (QueueName)'
_REDRIVE_DOC = 'Amazon SQS Developer Guide, "Using dead-letter queues in Amazon SQS"'
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
DEFAULT_RETENTION = 345_600  # 4 days, SQS's default


def sqs_queues(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """Queue names <= 80 characters, redrive maxReceiveCount 1..1,000 (and a dead-letter queue that keeps messages
    longer than its source: SQS keeps a message's original enqueue time, so a shorter retention deletes redriven
    messages early; advice). The attribute ranges are cfn-lint's (lint.py)."""
    for logical_id, res in t.of_type(QUEUE).items():
        props = res["Properties"]
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
        count = as_int(redrive.get("maxReceiveCount"), 0)
        if not 1 <= count <= 1000:
            yield Violation(
                "sqs.max-receive-count",
                logical_id,
                f'Value {{"maxReceiveCount":"{count}"}} for parameter RedrivePolicy is invalid. Reason: Invalid '
                f"value for maxReceiveCount: {count}, valid values are from 1 to 1000 both inclusive.",
                _REDRIVE_DOC,
            )
        dlq = linked(redrive.get("deadLetterTargetArn"))
        if dlq is not None and t.resources.get(dlq, {}).get("Type") == QUEUE:
            source_retention = as_int(props.get("MessageRetentionPeriod"), DEFAULT_RETENTION)
            dlq_retention = as_int(t.properties(dlq).get("MessageRetentionPeriod"), DEFAULT_RETENTION)
            if dlq_retention < source_retention:
                yield Violation(
                    "sqs.dlq-retention",
                    logical_id,
                    f"dead-letter queue {dlq} keeps messages {dlq_retention} s, less than {logical_id}'s "
                    f"{source_retention} s: redriven messages expire early",
                    _REDRIVE_DOC,
                    advice=True,
                )
