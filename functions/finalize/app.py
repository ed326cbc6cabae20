"""Finalize function: completion messages (from the webhook, the poller or the sweeper) → terminal job.

Download the cutout, check it is a PNG, write it under the output prefix, record `complete`, publish
"Cutout Completed"; or record Magic Hour's error / cancelation. Idempotent per job (see cutout.completion).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.completion import CompletionMessage, Finalizer
from cutout.config import get_settings
from cutout.magic_hour import MalformedResponse, parse_project
from cutout.observability import count, logger, metrics
from cutout.sqs_batch import SQSRecord, process_batch

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_settings()
finalizer = Finalizer(settings)


def record_handler(record: SQSRecord) -> str:
    try:
        message = CompletionMessage.from_json(record.body)
        parse_project(message.project)  # validated before any work, so only bad input is dropped below
    except (ValueError, KeyError, TypeError, MalformedResponse) as exc:
        # A message that can never be processed: recorded (log + metric), not retried forever.
        count("CompletionMalformed")
        logger.error("malformed completion message dropped", extra={"reason": str(exc)[:200]})
        return "malformed"
    receives = int(record.attributes.approximate_receive_count or 1)
    outcome = finalizer.handle(message, receive_count=receives)
    logger.info("completion handled", extra={"outcome": outcome, "source": message.source})
    return outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_batch(event, context, record_handler)
