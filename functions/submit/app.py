"""Submit function: S3 upload events → one Magic Hour job each (the domain: cutout.use_cases.submit).

Deployed behind the ingest SQS queue (EventBridge "Object Created"), with partial batch responses: only
records that really failed go back to the queue. Direct S3 notifications and direct EventBridge events are
accepted too (other wirings, `sam local invoke -e events/...`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.aws.sqs_batch import SQSRecord, process_batch
from cutout.domain.models import Clock, utc_now
from cutout.domain.outcomes import SubmitOutcome
from cutout.runtime.config import Settings, get_settings
from cutout.runtime.observability import logger, metrics
from cutout.use_cases.collaborators import collaborators, job_ending
from cutout.use_cases.submit import PARK_DELAY_SECONDS, AfterCreate, Submitter

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

submitter: Submitter


def configure(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    after_create: AfterCreate | None = None,
    park_delay_seconds: int = PARK_DELAY_SECONDS,
) -> Submitter:
    """Build this function's domain service (at import: the cold start). The seam for the local stack, the soak
    and tests, which inject a clock, a failure point or other settings here instead of patching module globals."""
    global submitter  # noqa: PLW0603 - the one documented place that (re)builds the module's service
    common = collaborators(settings or get_settings(), clock=clock)
    submitter = Submitter(common, job_ending(common), after_create=after_create, park_delay_seconds=park_delay_seconds)
    return submitter


configure()


def record_handler(record: SQSRecord) -> list[SubmitOutcome]:
    logger.thread_safe_append_keys(message_id=record.message_id)
    try:
        return submitter.handle_message(record.body)
    finally:
        logger.thread_safe_remove_keys(["message_id"])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    records = event.get("Records") if isinstance(event, dict) else None
    if (
        isinstance(records, list)
        and records
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    ):
        # Records deferred for lack of time go back to the ingest queue (sqs_batch.py says why re-sent).
        return process_batch(event, context, record_handler, requeue_to=submitter.settings.ingest_queue_url)
    # A direct invocation (S3 notification or EventBridge event): any failure raises, so Lambda's async
    # retries and on-failure destination keep the upload.
    summary = [{"kind": o.kind, "reason": o.reason, "job_id": o.job_id} for o in submitter.handle_event(event)]
    logger.info("direct invocation processed", extra={"outcomes": summary})
    return {"outcomes": summary}
