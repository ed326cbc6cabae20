"""Submit function: S3 upload events → one Magic Hour job each (domain logic in cutout.submit).

Deployed behind the ingest SQS queue (EventBridge "Object Created"), with partial batch responses: only
records that really failed go back to the queue. Direct S3 notifications and direct EventBridge events are
accepted too (other wirings, `sam local invoke -e events/...`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout import aws_clients, s3_events
from cutout.config import get_settings
from cutout.observability import clear_job, count, logger, metrics
from cutout.sqs_batch import SQSRecord, process_batch
from cutout.submit import BudgetExhausted, Outcome, Submitter

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_settings()  # validated once, at cold start
submitter = Submitter(settings)


def _submit_all(parsed: list[s3_events.Parsed]) -> list[Outcome]:
    outcomes = []
    for item in parsed:
        try:
            outcomes.append(submitter.submit(item))
        finally:
            clear_job()
    return outcomes


# A spent budget lasts until the next UTC day (or a raised budget). Failing the record would spend one of its
# receives per visibility timeout and dead-letter it within minutes (maxReceiveCount), so the message is sent
# back to its own queue with SQS's longest delay (a fresh receive count) and only then acknowledged.
PARK_DELAY_SECONDS = 900


def _queue_url(arn: str) -> str:
    _, partition, _, region, account, name = arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def _park(record: SQSRecord) -> None:
    """Re-send the record to its queue, delayed. Raises if that fails, so the record itself goes back."""
    aws_clients.sqs().send_message(
        QueueUrl=_queue_url(record.event_source_arn), MessageBody=record.body, DelaySeconds=PARK_DELAY_SECONDS
    )
    count("BudgetParked")
    logger.info("upload parked until the budget allows it", extra={"delay_seconds": PARK_DELAY_SECONDS})


def record_handler(record: SQSRecord) -> list[Outcome]:
    logger.append_keys(message_id=record.message_id)
    try:
        return _submit_all(s3_events.parse_text(record.body))
    except BudgetExhausted:
        _park(record)
        return [Outcome("parked", "budget_exhausted")]
    finally:
        logger.remove_keys(["message_id"])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    records = event.get("Records") if isinstance(event, dict) else None
    if (
        isinstance(records, list)
        and records
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    ):
        return process_batch(event, context, record_handler)
    # A direct invocation (S3 notification or EventBridge event): any failure raises, so Lambda's async
    # retries and on-failure destination keep the upload.
    outcomes = _submit_all(s3_events.parse(event))
    summary = [{"kind": o.kind, "reason": o.reason, "job_id": o.job_id} for o in outcomes]
    logger.info("direct invocation processed", extra={"outcomes": summary})
    return {"outcomes": summary}
