"""Finalize function: completion messages (from the webhook, the poller or the sweeper) → terminal job.

Download the cutout, check it is a PNG, write it under the output prefix, record `complete`, publish
"Cutout Completed"; or record Magic Hour's error / cancelation. Idempotent per job (see cutout.use_cases.finalize).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.aws.sqs_batch import SQSRecord, process_batch
from cutout.domain.errors import MalformedResponse
from cutout.domain.messages import CompletionMessage
from cutout.domain.models import Clock, utc_now
from cutout.domain.outcomes import FinalizeOutcome
from cutout.magic_hour.client import parse_project
from cutout.runtime.config import Settings, get_settings
from cutout.runtime.observability import count, logger, metrics
from cutout.use_cases.collaborators import collaborators, job_ending
from cutout.use_cases.finalize import Finalizer

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

finalizer: Finalizer


def configure(settings: Settings | None = None, *, clock: Clock = utc_now) -> Finalizer:
    """Build this function's domain service (at import: the cold start); the seam for the local stack and tests."""
    global finalizer  # noqa: PLW0603 - the one documented place that (re)builds the module's service
    common = collaborators(settings or get_settings(), clock=clock)
    finalizer = Finalizer(common, job_ending(common))
    return finalizer


configure()


def record_handler(record: SQSRecord) -> FinalizeOutcome:
    try:
        message = CompletionMessage.from_json(record.body)
        parse_project(message.project)  # validated before any work, so only bad input is dropped below
    except (ValueError, KeyError, TypeError, MalformedResponse) as exc:
        # A message that can never be processed: recorded (log + metric), not retried forever.
        count("CompletionMalformed")
        logger.error("malformed completion message dropped", extra={"reason": str(exc)[:200]})
        return FinalizeOutcome.MALFORMED
    receives = int(record.attributes.approximate_receive_count or 1)
    outcome = finalizer.handle(message, receive_count=receives)
    logger.info("completion handled", extra={"outcome": outcome, "source": message.source})
    return outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_batch(event, context, record_handler)
