"""Finalize function: completion messages (from the webhook, the poller or the sweeper) → terminal job.

Download the cutout, check it is a PNG, write it under the output prefix, record `complete`, publish
"Cutout Completed"; or record Magic Hour's error / cancelation. Idempotent per job (see cutout.completion).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from cutout.completion import CompletionMessage, Finalizer
from cutout.config import get_settings
from cutout.magic_hour import MalformedResponse
from cutout.observability import clear_job, count, logger, metrics

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_settings()
finalizer = Finalizer(settings)


def record_handler(record: SQSRecord) -> str:
    try:
        try:
            message = CompletionMessage.from_json(record.body)
            receives = int(record.attributes.approximate_receive_count or 1)
            outcome = finalizer.handle(message, receive_count=receives)
        except (ValueError, KeyError, TypeError, MalformedResponse) as exc:
            # A message that can never be processed: recorded (log + metric), not retried forever.
            count("CompletionMalformed")
            logger.error("malformed completion message dropped", extra={"reason": str(exc)[:200]})
            return "malformed"
        logger.info("completion handled", extra={"outcome": outcome, "source": message.source})
        return outcome
    finally:
        clear_job()


def _processor() -> BatchProcessor:
    # One per invocation (it is a cheap object): a module-level processor holds the batch's failures, and the
    # local stack runs concurrent invocations as threads of one module. raise_on_entire_batch_failure=False:
    # partial batch responses even when every record failed, so only the failed ones return.
    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(event=event, record_handler=record_handler, processor=_processor(), context=context)
