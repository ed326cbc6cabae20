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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from cutout.aws import aws_clients
from cutout.domain.job import plain_item
from cutout.domain.models import iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SLOT_PREFIX = "slot#"
LIMIT_KEY = "admission#limit"
# Written by the webhook function (at most once a minute per instance) when authentic deliveries arrive: read with
# the slots at no extra call, it tells the submit that webhooks reach this stack (the first status check can wait
# for them). Its own item, not the limit's: the role behind the public URL writes no slot# or admission# item.
WEBHOOKS_SEEN_KEY = "webhook#seen"
# Webhooks noted within this long are taken to reach the stack (a stack whose webhook stops answering falls back
# to the polling-only schedule within it).
WEBHOOKS_FRESH = timedelta(minutes=15)
BATCH_GET_MAX_KEYS = 100  # "BatchGetItem": up to 100 items per call (DynamoDB API reference)
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
    waiting: bool = False  # jobs waited for a slot while this one was held: its release wakes the dispatcher


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

    @property
    def at_top(self) -> bool:
        """At the configured maximum with nothing stored below it: a success has nothing to raise."""
        return self.effective >= self.maximum and (self.stored is None or self.stored == self.effective)


class Snapshot(NamedTuple):  # not a frozen dataclass: ~0.2 ms at import, not ~0.65 (job.py)
    slots: tuple[Slot, ...]
    limit: Limit
    webhooks_seen_at: datetime | None = None  # the last authentic webhook delivery noted (WEBHOOKS_SEEN_KEY)

    def webhooks_arrive(self, now: datetime) -> bool:
        return self.webhooks_seen_at is not None and now - self.webhooks_seen_at < WEBHOOKS_FRESH

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
        """Every slot, the effective limit and when webhooks last arrived, in one strongly consistent BatchGetItem
        (two when MaxJobsInFlight is 99: 101 keys)."""
        keys = [slot_key(i) for i in range(self.max_in_flight)]
        items = self.batch_get([*keys, LIMIT_KEY, WEBHOOKS_SEEN_KEY])
        slots = tuple(
            Slot(k, str(items[k]["holder"]), str(items[k].get("acquired_at") or ""), bool(items[k].get("waiting")))
            if k in items and items[k].get("holder")
            else Slot(k)
            for k in keys
        )
        seen = parse_ts((items.get(WEBHOOKS_SEEN_KEY) or {}).get("seen_at"))
        return Snapshot(slots, self._limit_from(items.get(LIMIT_KEY)), seen)

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
        unique = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique), BATCH_GET_MAX_KEYS):
            out.update(self._batch_get(unique[start : start + BATCH_GET_MAX_KEYS]))
        return out

    def _batch_get(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {self.table: {"Keys": [{"job_id": {"S": k}} for k in keys], "ConsistentRead": True}}
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
    def take_any(
        self, job_id: str, candidates: Sequence[Slot], *, limit_low: bool = False, waiting: bool = False
    ) -> Acquired | None:
        """Put `job_id` into the first of `candidates` still free (conditional put), or None if all were taken.

        What its release will need is written on the slot now, so the release (a delete answering the item it
        deleted) needs no read: `limit_low`, the effective limit stood below its maximum when the slot was taken
        (a success then raises it; at the top there is nothing to raise, and reading the limit item on every
        finish cost a call per image); `waiting`, jobs wait behind this one (its release wakes the dispatcher)."""
        for slot in candidates:
            try:
                self.client.put_item(
                    TableName=self.table, **self.put_request(slot.slot_id, job_id, limit_low=limit_low, waiting=waiting)
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                continue  # taken meanwhile by another job: try the next
            return Acquired(slot.slot_id)
        return None

    def put_request(self, slot_id: str, job_id: str, *, limit_low: bool, waiting: bool) -> dict[str, Any]:
        """The conditional put that takes `slot_id` for `job_id` (`take_any`), without its table: the claim makes it
        in one transaction with the job's record (JobStore.claim)."""
        item: dict[str, Any] = {
            "job_id": {"S": slot_id},
            "holder": {"S": job_id},
            "acquired_at": {"S": iso(self.clock())},
        }
        if limit_low:
            item["limit_low"] = {"BOOL": True}
        if waiting:
            item["waiting"] = {"BOOL": True}
        return {"Item": item, "ConditionExpression": "attribute_not_exists(job_id)"}

    def release(self, slot_id: str | None, job_id: str) -> bool:
        """Give back `job_id`'s slot. True only for the call that actually freed it (exactly once)."""
        return self.release_item(slot_id, job_id) is not None

    def release_item(self, slot_id: str | None, job_id: str) -> dict[str, Any] | None:
        """`release`, answering the slot item as it was for the call that freed it, else None. The item comes with
        the delete (`ReturnValues=ALL_OLD`, "DeleteItem", DynamoDB API reference): what the release does next (wake
        the dispatcher, raise the limit) is read from it."""
        if not slot_id or not slot_id.startswith(SLOT_PREFIX):
            return None
        try:
            resp = self.client.delete_item(
                TableName=self.table,
                Key={"job_id": {"S": slot_id}},
                ConditionExpression="holder = :j",
                ExpressionAttributeValues={":j": {"S": job_id}},
                ReturnValues="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return plain_item(resp.get("Attributes") or {"job_id": {"S": slot_id}})

    def flag_waiting(self, held: Sequence[Slot]) -> bool:
        """Mark each of `held` not marked yet: a job waits, so its release must wake the dispatcher. Conditional on
        the slot being held still (by whoever holds it now: a slot re-taken meanwhile is marked for its new holder).
        True when one of them was freed meanwhile, without a mark to wake anyone: the caller wakes the dispatcher.
        Only unmarked slots are written: in a flood the first waiters mark every slot and the rest write nothing."""
        freed = False
        for slot in held:
            if slot.waiting:
                continue
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"job_id": {"S": slot.slot_id}},
                    UpdateExpression="SET waiting = :t",
                    ConditionExpression="attribute_exists(holder)",
                    ExpressionAttributeValues={":t": {"BOOL": True}},
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                freed = True
        return freed

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
