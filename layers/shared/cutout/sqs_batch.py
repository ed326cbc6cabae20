"""Partial batch responses for the SQS-fed functions (Powertools' BatchProcessor), shared by every handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from cutout.observability import clear_job


def process_batch(event: dict[str, Any], context: Any, record_handler: Callable[[SQSRecord], Any]) -> Any:
    """Run `record_handler` over every record; only the records that raised go back to the queue.

    A processor per invocation (a cheap object): a module-level one holds the batch's failures, and the local
    stack runs concurrent invocations as threads of one module. raise_on_entire_batch_failure=False keeps the
    answer a partial batch response even when every record failed. Job keys never leak from one record's log
    lines into the next.
    """

    def one(record: SQSRecord) -> Any:
        try:
            return record_handler(record)
        finally:
            clear_job()

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=one, processor=processor, context=context)
