"""Poll function: one bounded status check per delayed SQS message (the fallback when webhooks are missed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from cutout.completion import Poller, PollMessage
from cutout.config import get_settings
from cutout.observability import clear_job, count, logger, metrics

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_settings()
poller = Poller(settings)


def record_handler(record: SQSRecord) -> str:
    try:
        try:
            message = PollMessage.from_json(record.body)
        except (ValueError, KeyError, TypeError) as exc:
            count("PollMalformed")
            logger.error("malformed poll message dropped", extra={"reason": str(exc)[:200]})
            return "malformed"
        return poller.handle(message)
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
