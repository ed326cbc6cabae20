"""Poll function: one bounded status check per delayed SQS message (the fallback when webhooks are missed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.completion import Poller, PollMessage
from cutout.config import get_settings
from cutout.observability import count, logger, metrics
from cutout.sqs_batch import SQSRecord, process_batch

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_settings()
poller = Poller(settings)


def record_handler(record: SQSRecord) -> str:
    try:
        message = PollMessage.from_json(record.body)
    except (ValueError, KeyError, TypeError) as exc:
        # A message that can never be processed: recorded (log + metric), not retried forever.
        count("PollMalformed")
        logger.error("malformed poll message dropped", extra={"reason": str(exc)[:200]})
        return "malformed"
    return poller.handle(message)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_batch(event, context, record_handler)
