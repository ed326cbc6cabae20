"""Lambda's SQS event-source mapping, reimplemented against moto.

Semantics kept from the Lambda service (they are what the handlers' retry design relies on):

* a batch is up to ``BatchSize`` messages gathered for at most ``MaximumBatchingWindowInSeconds``;
* records are shaped exactly like Lambda's SQS event records;
* success deletes the batch; an exception deletes nothing (every message returns after the queue's visibility
  timeout); with ``ReportBatchItemFailures`` only the listed ``itemIdentifier``s stay, and a malformed response
  (unknown or empty identifier) fails the whole batch, as Lambda does;
* messages received more than ``maxReceiveCount`` times go to the DLQ — moto does this itself on receive (checked in
  ``moto.sqs.models.SQSBackend.receive_message``), so the poller does not second-guess it;
* ``ScalingConfig.MaximumConcurrency`` caps concurrent invocations (worker threads).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cutout_dev.local_stack.aws import ARRIVALS, REGION
from cutout_dev.local_stack.lambda_runtime import LocalFunction
from cutout_dev.local_stack.template import SqsEventSource

log = logging.getLogger(__name__)

# Lambda's pollers long-poll (20 s). moto's long poll cannot be interrupted, which would hold every stop() for
# the wait, so the local poller short-polls and sleeps IDLE_SECONDS on an empty queue; the sleep ends early when a
# request that may deliver a message has been served (aws.Arrivals, with moto in this process). Delayed messages
# (status checks, parked uploads) still wait for the end of a sleep: at most IDLE_SECONDS late.
IDLE_SECONDS = 0.1


@dataclass
class PollerStats:
    batches: int = 0
    records: int = 0
    failed_batches: int = 0
    failed_records: int = 0
    deleted: int = 0
    # ApproximateReceiveCount of every record handed to the function (how many times each message had been
    # received, this time included): the flood checks that none came near the queue's maxReceiveCount.
    receive_counts: Counter[int] = field(default_factory=Counter)

    @property
    def max_receive_count(self) -> int:
        return max(self.receive_counts, default=0)


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """boto3's MessageAttributeValue → the camelCase shape Lambda puts in the event (binary as base64)."""
    out: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return out


def to_lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One ReceiveMessage result → one record of Lambda's SQS event."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class SqsPoller:
    """Polls one queue and invokes one function with batches, on a bounded pool of worker threads."""

    def __init__(
        self,
        source: SqsEventSource,
        function: LocalFunction,
        *,
        queue_url: str,
        queue_arn: str,
        client_factory: Callable[[], Any],
        default_concurrency: int = 5,
    ) -> None:
        self.source = source
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self._client = client_factory()
        self.concurrency = source.maximum_concurrency or default_concurrency
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._executor = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"lambda-{function.logical_id}"
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._lock = threading.Lock()
        self.stats = PollerStats()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._in_flight > 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"sqs-poller-{self.source.mapping_id}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Stop polling (returns at once; ``stop`` waits). Lets a stack stop all its pollers in parallel."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        # Running invocations finish (Lambda would let them run to their timeout too).
        self._executor.shutdown(wait=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue  # every worker busy: MaximumConcurrency reached, stop polling until one frees up
            seen = ARRIVALS.seq  # read before the receive: an arrival during it ends the sleep below at once
            try:
                batch = self._collect()
            except Exception:
                self._slots.release()
                if not self._stop.is_set():
                    log.exception("%s: receive failed", self.source.mapping_id)
                    self._stop.wait(1)
                continue
            if not batch:
                self._slots.release()
                ARRIVALS.wait(seen, IDLE_SECONDS)
                continue
            with self._lock:
                self._in_flight += 1
            self._executor.submit(self._process, batch)

    def _collect(self) -> list[dict[str, Any]]:
        """Gather one batch: up to BatchSize messages within the batching window (ReceiveMessage caps at 10)."""
        batch: list[dict[str, Any]] = []
        deadline: float | None = None
        while not self._stop.is_set() and len(batch) < self.source.batch_size:
            if deadline is not None and time.monotonic() >= deadline:
                break
            response = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.source.batch_size - len(batch)),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            batch.extend(messages)
            if not batch:
                return batch  # nothing waiting: go back to the loop (and its stop check)
            if self.source.batching_window_seconds <= 0:
                break
            if deadline is None:
                deadline = time.monotonic() + self.source.batching_window_seconds
            if not messages:
                time.sleep(0.05)
        return batch

    def _process(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._invoke(batch)
        except Exception:
            log.exception("%s: poller error", self.source.mapping_id)
        finally:
            with self._lock:
                self._in_flight -= 1
            self._slots.release()

    def _invoke(self, batch: list[dict[str, Any]]) -> None:
        event = {"Records": [to_lambda_record(m, self.queue_arn) for m in batch]}
        self.stats.batches += 1
        self.stats.records += len(batch)
        counts = [int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 1)) for m in batch]
        with self._lock:  # workers of one poller share the stats
            self.stats.receive_counts.update(counts)
        try:
            result = self.function.invoke(event)
        except Exception:
            # Lambda deletes nothing: the messages become visible again after the visibility timeout and count
            # one more receive towards the DLQ.
            self.stats.failed_batches += 1
            self.stats.failed_records += len(batch)
            return
        keep = self._failed_ids(result, {m["MessageId"] for m in batch})
        if keep is None:
            log.warning("%s: invalid batchItemFailures %r; whole batch retried", self.source.mapping_id, result)
            self.stats.failed_batches += 1
            self.stats.failed_records += len(batch)
            return
        self.stats.failed_records += len(keep)
        done = [m for m in batch if m["MessageId"] not in keep]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            response = self._client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            self.stats.deleted += len(response.get("Successful", []))

    def _failed_ids(self, result: Any, batch_ids: set[str]) -> set[str] | None:
        """The message ids to keep, or None when the response is malformed (whole batch fails)."""
        if not self.source.report_batch_item_failures or not isinstance(result, dict):
            return set()  # without ReportBatchItemFailures Lambda ignores the return value
        failures = result.get("batchItemFailures")
        if not failures:
            return set()
        if not isinstance(failures, list):
            return None
        keep: set[str] = set()
        for item in failures:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not ident or ident not in batch_ids:
                return None
            keep.add(str(ident))
        return keep
