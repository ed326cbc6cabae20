"""Partial batch responses for the SQS-fed functions, and the typed SQS record their handlers receive.

Hand-written on purpose, after measuring (README, Benchmarks): Powertools' `BatchProcessor` imports asyncio and
its `data_classes` package, which imports every event class (+36 ms of a ~450 ms cold start, `-X importtime`,
with Logger and Metrics already loaded); importing only `data_classes.sqs_event` still runs the package's
`__init__` (+21 ms). The loop below keeps BatchProcessor's contract as Cutout used it
(`raise_on_entire_batch_failure=False`): every record is handed to the handler; a record whose handler raises
an `Exception` is listed in `batchItemFailures` by message id, in batch order, and the others are acknowledged;
the answer stays a partial batch response even when every record failed; a `BaseException` (a killed worker)
escapes and fails the invocation; an event without a non-empty `Records` list is not a batch and raises.

Added to that contract: a record whose use case finds too little time left for its Magic Hour call (`OutOfTime`,
time_budget.py) is deferred with every record after it: nothing more is started in this invocation (see `_defer`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cutout.domain.errors import OutOfTime
from cutout.runtime import time_budget
from cutout.runtime.observability import clear_job, count, logger

if TYPE_CHECKING:  # types of the answer only: two TypedDict classes cost ~0.2 ms to build at cold start
    from typing import TypedDict

    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    class PartialItemFailure(TypedDict):
        itemIdentifier: str

    class PartialBatchResponse(TypedDict):
        batchItemFailures: list[PartialItemFailure]


class SQSRecordAttributes:
    """The record's `attributes` (names as Powertools' data class spells them; a missing one raises KeyError)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    @property
    def approximate_receive_count(self) -> str:
        return str(self._raw["ApproximateReceiveCount"])


class SQSRecord:
    """One record of an SQS event: a read-only view over Lambda's dict, with the accessors our handlers use."""

    __slots__ = ("raw_event",)

    def __init__(self, raw_event: Mapping[str, Any]) -> None:
        self.raw_event = raw_event

    @property
    def message_id(self) -> str:
        return str(self.raw_event["messageId"])

    @property
    def body(self) -> str:
        return str(self.raw_event["body"])

    @property
    def event_source_arn(self) -> str:
        return str(self.raw_event["eventSourceARN"])

    @property
    def attributes(self) -> SQSRecordAttributes:
        return SQSRecordAttributes(self.raw_event["attributes"])


def process_batch(
    event: Mapping[str, Any],
    context: Any,
    record_handler: Callable[[SQSRecord], Any],
    *,
    requeue_to: str = "",
) -> PartialBatchResponse:
    """Run `record_handler` over every record; only the records that raised go back to the queue.

    The time budget: the records after the first run with the invocation's deadline (from `context`), so a use
    case can refuse to start a Magic Hour call it could not finish (time_budget.py); the first record never does,
    so every invocation makes progress and a deferral cannot go round for ever. A refused record and the rest of
    the batch are re-sent to `requeue_to`, their own queue (see `_defer`). No state outlives the call, so concurrent
    invocations (the local stack runs them as threads) cannot mix their failures. Job keys never leak from one
    record's log lines into the next.
    """
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise ValueError("not an SQS batch event: no Records")
    deadline = time_budget.deadline_of(context)
    failures: list[PartialItemFailure] = []
    for index, raw in enumerate(records):
        record = SQSRecord(raw)
        try:
            with time_budget.until(deadline if index else None):
                record_handler(record)
        except OutOfTime as exc:
            logger.info("too little time left; the rest of the batch is deferred", extra={"reason": str(exc)})
            failures.extend(_defer([SQSRecord(r) for r in records[index:]], requeue_to))
            break
        except Exception:
            # As Powertools: recorded at debug level only; the handlers log their own failures with context.
            logger.debug("record failed; returned to the queue", exc_info=True)
            failures.append({"itemIdentifier": record.message_id})
        finally:
            clear_job()
    return {"batchItemFailures": failures}


def _defer(records: list[SQSRecord], queue_url: str) -> list[PartialItemFailure]:
    """Send `records` back to their queue as new messages and acknowledge them; list only those that could not be
    sent as batch item failures.

    Why re-sent rather than listed as failures: a failure spends one of the message's receives, and the queue
    dead-letters on the receive after maxReceiveCount (5; "Using dead-letter queues in Amazon SQS"), so a record
    that happened to come late in five slow batches would reach the DLQ without ever failing. A re-sent copy is a
    new message: its receive count starts afresh, and it is visible at once instead of after the visibility timeout
    (what a listed failure waits: "Handling errors for an SQS event source in Lambda"). So deferrals never count
    towards the DLQ, only failures do. Should the send fail, the record is listed as a failure (one receive spent).
    A copy sent but not acknowledged (the invocation dies in between) arrives twice, which every consumer already
    takes (the job record's conditional writes)."""
    count("RecordsDeferred", len(records))
    if not queue_url:
        return [{"itemIdentifier": r.message_id} for r in records]
    from cutout.aws import aws_clients

    unsent: list[PartialItemFailure] = []
    for start in range(0, len(records), 10):  # SendMessageBatch takes at most 10 entries
        chunk = records[start : start + 10]
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "MessageBody": r.body} for i, r in enumerate(chunk)
        ]
        try:
            resp = aws_clients.sqs().send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception:
            logger.exception("could not re-send deferred records; they come back after the visibility timeout")
            unsent.extend({"itemIdentifier": r.message_id} for r in chunk)
            continue
        unsent.extend({"itemIdentifier": chunk[int(f["Id"])].message_id} for f in resp.get("Failed", []))
    return unsent
