"""Renditions function: "Cutout Completed" events (and rebuild requests) -> each preset rendered from the stored
cutout, recorded on the job, one "Cutout Renditions Ready" event (the domain: cutout.use_cases.renditions).

Off the paid path: it runs after the job is complete, costs no Magic Hour credit, and alone loads the imaging
library (its own layer). Behind the renditions queue, with partial batch responses like the other functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.aws.sqs_batch import SQSRecord, process_batch
from cutout.domain.models import Clock, utc_now
from cutout.domain.render_request import RenderRequest, RenditionsOutcome
from cutout.renditions.presets_source import PRESETS_MAX_AGE_SECONDS, PresetsSource
from cutout.runtime.config import Settings, get_settings
from cutout.runtime.observability import count, logger, metrics
from cutout.store.job_store import JobStore
from cutout.use_cases.renditions import RenditionsMaker

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

maker: RenditionsMaker


def configure(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    presets_max_age: int = PRESETS_MAX_AGE_SECONDS,
) -> RenditionsMaker:
    """Build this function's domain service (at import: the cold start); the seam for the local stack and tests
    (`presets_max_age=0`: every message reads the stored presets, as a test that changes them needs)."""
    global maker  # noqa: PLW0603 - the one documented place that (re)builds the module's service
    settings = settings or get_settings()
    store = JobStore(settings.jobs_table, clock=clock)
    maker = RenditionsMaker(settings, store, PresetsSource(settings.presets_parameter, max_age=presets_max_age), clock)
    return maker


configure()


def record_handler(record: SQSRecord) -> RenditionsOutcome:
    try:
        request = RenderRequest.from_json(record.body)
    except (ValueError, KeyError, TypeError) as exc:
        # A message that can never be processed: recorded (log + metric), not retried forever.
        count("RenditionsMalformed")
        logger.error("malformed render request dropped", extra={"reason": str(exc)[:200]})
        return RenditionsOutcome.MALFORMED
    outcome = maker.handle(request)
    logger.info("render request handled", extra={"outcome": outcome, "rebuild": request.rebuild})
    return outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_batch(event, context, record_handler)
