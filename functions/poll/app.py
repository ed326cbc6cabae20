"""Poll function: one bounded status check per delayed SQS message (the fallback when webhooks are missed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.aws.sqs_batch import SQSRecord, process_batch
from cutout.domain.models import Clock, utc_now
from cutout.domain.outcomes import PollOutcome
from cutout.runtime.config import Settings, get_settings
from cutout.runtime.observability import count, logger, metrics
from cutout.use_cases.collaborators import collaborators, job_ending
from cutout.use_cases.poll import Poller

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

poller: Poller


def configure(settings: Settings | None = None, *, clock: Clock = utc_now) -> Poller:
    """Build this function's domain service (at import: the cold start); the seam for the local stack and tests."""
    global poller  # noqa: PLW0603 - the one documented place that (re)builds the module's service
    common = collaborators(settings or get_settings(), clock=clock)
    poller = Poller(common, job_ending(common))
    return poller


configure()


def record_handler(record: SQSRecord) -> PollOutcome:
    try:
        message = poller.parse(record.body)
    except (ValueError, KeyError, TypeError) as exc:
        # A message that can never be processed: recorded (log + metric), not retried forever.
        count("PollMalformed")
        logger.error("malformed poll message dropped", extra={"reason": str(exc)[:200]})
        return PollOutcome.MALFORMED
    return poller.handle(message)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    # Checks deferred for lack of time go back to the poll queue (sqs_batch.py says why re-sent).
    return process_batch(event, context, record_handler, requeue_to=poller.settings.poll_queue_url)
