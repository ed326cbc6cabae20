"""Slot items: what a slot and the effective-limit item are, and how they are read, taken and given back.

One slot is one item, `slot#0 … slot#N-1`, in the jobs table, present while held, carrying its `holder` (a job
id). Taking one is a conditional put of a free slot (`attribute_not_exists`), giving it back a conditional delete
(`holder = :job`), so a release is exactly-once by construction, whoever calls it. Why slots and not one counter,
and the limits of this design: admission.py.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from cutout.aws import aws_clients
from cutout.domain.job import plain_item
from cutout.domain.models import iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SLOT_PREFIX = "slot#"
LIMIT_KEY = "admission#limit"
# Unprocessed keys of a BatchGetItem (`SlotTable._batch_get`): up to 5 calls, waits drawn from [0, 0.05 s],
# [0, 0.1], [0, 0.2], [0, 0.4]: at most 0.75 s in all, inside the margin a record has (time_budget.py).
UNPROCESSED_ATTEMPTS = 5
UNPROCESSED_BASE_WAIT_SECONDS = 0.05
UNPROCESSED_MAX_WAIT_SECONDS = 0.4


def slot_key(index: int) -> str:
    return f"{SLOT_PREFIX}{index}"


def parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class Slot(NamedTuple):  # not a frozen dataclass: ~0.2 ms at import, not ~0.65 (job.py)
    slot_id: str
    holder: str | None = None
    acquired_at: str | None = None  # the stored string: the release guard compares it verbatim


class Acquired(NamedTuple):  # not a frozen dataclass: ~0.2 ms at import, not ~0.65 (job.py)
    slot_id: str  # taken by this call: the caller records it on the job, or gives it back


class Limit(NamedTuple):  # not a frozen dataclass: ~0.2 ms at import, not ~0.65 (job.py)
    """The effective limit as read. `stored` is None when no item exists yet (= the configured maximum)."""

    effective: int
    maximum: int
    stored: int | None = None
    backoff_until: datetime | None = None

    def backing_off(self, now: datetime) -> bool:
        return self.backoff_until is not None and now < self.backoff_until


class Snapshot(NamedTuple):  # not a frozen dataclass: ~0.2 ms at import, not ~0.65 (job.py)
    slots: tuple[Slot, ...]
    limit: Limit

    @property
    def held(self) -> list[Slot]:
        return [s for s in self.slots if s.holder]

    def free_below_limit(self) -> list[Slot]:
        """Slots a new job may take: free, below the effective limit, and only while fewer than that are held."""
        if len(self.held) >= self.limit.effective:
            return []
        return [s for s in self.slots[: self.limit.effective] if not s.holder]


class SlotTable:
    """Reads and conditional writes of the slot and limit items."""

    def __init__(
        self, table: str, max_in_flight: int, *, client: DynamoDBClient | None, clock: Callable[[], datetime]
    ) -> None:
        self.table = table
        self.max_in_flight = max_in_flight
        self._client = client
        self.clock = clock

    @property
    def client(self) -> DynamoDBClient:
        return self._client or aws_clients.dynamodb()

    # ----- reads -------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Every slot and the effective limit, in one strongly consistent BatchGetItem."""
        keys = [slot_key(i) for i in range(self.max_in_flight)] + [LIMIT_KEY]
        items = self.batch_get(keys)
        slots = tuple(
            Slot(k, str(items[k]["holder"]), str(items[k].get("acquired_at") or ""))
            if k in items and items[k].get("holder")
            else Slot(k)
            for k in keys[:-1]
        )
        return Snapshot(slots, self._limit_from(items.get(LIMIT_KEY)))

    def limit(self) -> Limit:
        resp = self.client.get_item(TableName=self.table, Key={"job_id": {"S": LIMIT_KEY}}, ConsistentRead=True)
        item = resp.get("Item")
        return self._limit_from(plain_item(item) if item else None)

    def _limit_from(self, item: dict[str, Any] | None) -> Limit:
        if not item or not isinstance(item.get("effective"), int):
            return Limit(effective=self.max_in_flight, maximum=self.max_in_flight)
        stored = int(item["effective"])
        return Limit(
            # A lowered MaxJobsInFlight applies at once; a raised one is reached by additive increase.
            effective=max(1, min(stored, self.max_in_flight)),
            maximum=self.max_in_flight,
            stored=stored,
            backoff_until=parse_ts(item.get("backoff_until")),
        )

    def batch_get(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Items by key. BatchGetItem may answer only part of a request (throttling, or its 16 MB answer limit) and
        name the rest in UnprocessedKeys, which AWS says to retry "with exponential backoff" (BatchGetItem API
        reference). Hand-written because boto3 has no helper for it: its retries cover a failed call, not a partial
        answer, and `batch_writer` exists for writes only. Bounded: UNPROCESSED_ATTEMPTS calls, waits with full
        jitter ("Exponential Backoff And Jitter", AWS Architecture Blog) of at most UNPROCESSED_MAX_WAIT_SECONDS."""
        out: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {
            self.table: {"Keys": [{"job_id": {"S": k}} for k in dict.fromkeys(keys)], "ConsistentRead": True}
        }
        for attempt in range(UNPROCESSED_ATTEMPTS):
            if attempt:
                ceiling = min(UNPROCESSED_MAX_WAIT_SECONDS, UNPROCESSED_BASE_WAIT_SECONDS * 2 ** (attempt - 1))
                time.sleep(random.uniform(0, ceiling))
            resp = self.client.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(self.table, []):
                record = plain_item(item)
                out[str(record["job_id"])] = record
            request = dict(resp.get("UnprocessedKeys") or {})
            if not request:
                return out
        raise RuntimeError(f"DynamoDB left keys unprocessed after {UNPROCESSED_ATTEMPTS} attempts")

    # ----- take / give back --------------------------------------------------------------------------
    def take_any(self, job_id: str, candidates: Sequence[Slot]) -> Acquired | None:
        """Put `job_id` into the first of `candidates` still free (conditional put), or None if all were taken."""
        now = iso(self.clock())
        for slot in candidates:
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={
                        "job_id": {"S": slot.slot_id},
                        "holder": {"S": job_id},
                        "acquired_at": {"S": now},
                    },
                    ConditionExpression="attribute_not_exists(job_id)",
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                continue  # taken meanwhile by another job: try the next
            return Acquired(slot.slot_id)
        return None

    def release(self, slot_id: str | None, job_id: str) -> bool:
        """Give back `job_id`'s slot. True only for the call that actually freed it (exactly once)."""
        if not slot_id or not slot_id.startswith(SLOT_PREFIX):
            return False
        try:
            self.client.delete_item(
                TableName=self.table,
                Key={"job_id": {"S": slot_id}},
                ConditionExpression="holder = :j",
                ExpressionAttributeValues={":j": {"S": job_id}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def free(self, slot: Slot) -> bool:
        """Delete a slot only if it is still exactly what was read (same holder, same acquisition)."""
        try:
            self.client.delete_item(
                TableName=self.table,
                Key={"job_id": {"S": slot.slot_id}},
                ConditionExpression="holder = :h AND acquired_at = :a",
                ExpressionAttributeValues={":h": {"S": slot.holder or ""}, ":a": {"S": slot.acquired_at or ""}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
