"""Admission control: at most N unfinished Magic Hour projects at once, counted across every invocation.

Magic Hour plans cap concurrent generations (Creator 3, Pro 5); what happens past the cap is undocumented (a queue
or a 429). Lambda's `MaximumConcurrency` caps invocations, not projects, so Cutout counts its own projects here.

Why slots, not one counter (the AWS semaphore sample keeps a single `count < limit` item):
- A slot is one item, `slot#0 … slot#N-1`, in the jobs table, present while held, carrying its `holder` (a job id).
  Acquire is a conditional put of a free slot (`attribute_not_exists`), release a conditional delete
  (`holder = :job`). A release is therefore exactly-once by construction, whoever calls it (webhook, poll, sweeper,
  a create that provably did not happen, a 429): a second or late release finds the slot gone or held by someone
  else and changes nothing. A counter instead needs every path to decrement exactly once, and a double decrement
  or a lost one silently changes the limit for good.
- The holders are named, so reconciliation can check each one against the job record, the source of truth: a slot
  whose holder has ended (or does not exist) is freed and counted (`SlotsRepaired`); nothing leaks forever.
- Writes spread over N items instead of one hot key; per job ≈ 2 writes (acquire + release) plus one read.

Effective limit (additive increase, measured decrease): `admission#limit` holds `effective` ≤ N. A 429 on a create
lowers it, once per back-off window, to the number of our projects Magic Hour had accepted (halving when there
were none: then the 429 was not about our concurrency); each successful finish adds 1 (up to N) after the window.
Acquire only hands out slots below the effective limit and only while fewer than `effective` slots are held, so a
`MaxJobsInFlight` set above the plan's real limit converges instead of burning receives. The item is written only
when the value changes.
N is a hard bound (there are N items); the effective limit is enforced on slot indices (hard for new jobs) and on
the held count as read (soft: slots above a freshly lowered limit drain as their jobs end).

Limits (stated, not hidden): N ≤ 99, because one consistent BatchGetItem (100 keys at most) reads all slots and the
limit item; an acquire costs one BatchGetItem (N+1 small items) and usually one conditional put. Jobs waiting for a
slot are found through the `by-status` GSI, which is eventually consistent: a wake-up missed in that lag is caught
by the periodic dispatch (see `reconcile`).

Slot and limit items carry no `status`, `created_at` or `project_id`, so they never appear in the GSIs, and no
`expires_at`: a held slot must not expire while its job runs (a TTL could only ever free a slot, never leak one,
but the reconciliation already does that with a reason attached).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cutout import aws_clients
from cutout.job import Job, plain_item
from cutout.job_store import BY_STATUS_INDEX
from cutout.models import JobStatus, iso, utc_now
from cutout.observability import count, logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cutout.config import Settings

SLOT_PREFIX = "slot#"
LIMIT_KEY = "admission#limit"
MAX_SLOTS = 99  # + the limit item = 100 keys, one BatchGetItem
WAITING = JobStatus.WAITING.value

# How long a finished (or never dispatched) holder may keep its slot before reconciliation calls it a leak: the
# ending path releases right after its terminal write, so anything older than this was missed, not in progress.
DEFAULT_GRACE = timedelta(seconds=60)
# A slot held by a job whose create has an unknown outcome (timeout after send, a 500, a worker that died
# mid-create) is kept this long after it was taken, waiting for evidence: the project, named after the job,
# reports in (webhook, poll or the sweeper's check) and its ending path releases the slot as any other. Without
# evidence it is freed after this bound: a project that exists has almost surely finished by then (Magic Hour's
# p50 is 4 s, queueing included, and admission keeps its queue at most N deep), so freeing it rarely lets one
# project too many start — and that costs at most one project queued at Magic Hour or one 429 (backpressure,
# handled) — while a create that never happened must not cost a slot for long. Capped by PollMaxWaitSeconds.
UNKNOWN_OUTCOME_HOLD_CAP = timedelta(seconds=60)
DEFAULT_UNKNOWN_OUTCOME_HOLD = UNKNOWN_OUTCOME_HOLD_CAP
# After a 429 the limit is not lowered again nor raised within this window: one decrease per congestion episode
# (several creates of one burst all see the same 429), and no increase straight back into the wall.
DEFAULT_BACKOFF = timedelta(seconds=30)


def slot_key(index: int) -> str:
    return f"{SLOT_PREFIX}{index}"


def _parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Slot:
    slot_id: str
    holder: str | None = None
    acquired_at: str | None = None  # the stored string: the release guard compares it verbatim

    @property
    def index(self) -> int:
        return int(self.slot_id[len(SLOT_PREFIX) :])


@dataclass(frozen=True, slots=True)
class Acquired:
    slot_id: str  # taken by this call: the caller records it on the job, or gives it back


@dataclass(frozen=True, slots=True)
class Limit:
    """The effective limit as read. `stored` is None when no item exists yet (= the configured maximum)."""

    effective: int
    maximum: int
    stored: int | None = None
    backoff_until: datetime | None = None

    def backing_off(self, now: datetime) -> bool:
        return self.backoff_until is not None and now < self.backoff_until


@dataclass(frozen=True, slots=True)
class Snapshot:
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


@dataclass(frozen=True, slots=True)
class Repair:
    slot_id: str
    holder: str
    reason: str


@dataclass(frozen=True, slots=True)
class Reconciliation:
    in_flight: int
    waiting: int
    effective_limit: int
    repaired: tuple[Repair, ...] = field(default_factory=tuple)

    @property
    def should_dispatch(self) -> bool:
        """Jobs wait while a slot is free: a wake-up was missed (a crash, or the GSI's lag), so dispatch now."""
        return self.waiting > 0 and self.in_flight < self.effective_limit


class Admission:
    """Slots for Magic Hour projects in the jobs table. Thread-safe (no mutable state besides the RNG)."""

    def __init__(
        self,
        table: str,
        max_in_flight: int,
        *,
        client: DynamoDBClient | None = None,
        clock: Callable[[], datetime] = utc_now,
        grace: timedelta = DEFAULT_GRACE,
        unknown_outcome_hold: timedelta = DEFAULT_UNKNOWN_OUTCOME_HOLD,
        backoff: timedelta = DEFAULT_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        if not 1 <= max_in_flight <= MAX_SLOTS:
            raise ValueError(f"max_in_flight must be within 1..{MAX_SLOTS}, got {max_in_flight}")
        self.table = table
        self.max_in_flight = max_in_flight
        self._client = client
        self._clock = clock
        self.grace = grace
        self.unknown_outcome_hold = unknown_outcome_hold
        self.backoff = backoff
        self._rng = rng or random.Random()

    @property
    def client(self) -> DynamoDBClient:
        return self._client or aws_clients.dynamodb()

    # ----- reads -------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Every slot and the effective limit, in one strongly consistent BatchGetItem."""
        keys = [slot_key(i) for i in range(self.max_in_flight)] + [LIMIT_KEY]
        items = self._batch_get(keys)
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
            backoff_until=_parse_ts(item.get("backoff_until")),
        )

    def _batch_get(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Items by key; BatchGetItem may leave keys unprocessed under throttling, so those are asked again."""
        out: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {
            self.table: {"Keys": [{"job_id": {"S": k}} for k in dict.fromkeys(keys)], "ConsistentRead": True}
        }
        for _ in range(5):
            resp = self.client.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(self.table, []):
                record = plain_item(item)
                out[str(record["job_id"])] = record
            request = dict(resp.get("UnprocessedKeys") or {})
            if not request:
                return out
        raise RuntimeError("DynamoDB left keys unprocessed after 5 attempts")

    # ----- acquire / release -------------------------------------------------------------------------
    def acquire(self, job_id: str) -> Acquired | None:
        """Take a free slot for `job_id`, or None when none is free (the job waits).

        Deliberately not idempotent: every call takes a slot of its own, which its caller either records on the job
        (claim, dispatch) or gives back. Handing a job "its" slot again would let two racing dispatchers share one
        slot, and the loser's give-back would then free the winner's — one project too many at Magic Hour.
        A slot left by a crash between acquire and the record is the reconciliation's (holder_waiting, &c.).
        """
        snap = self.snapshot()
        candidates = snap.free_below_limit()
        if not candidates and self._may_have_leaks(snap):
            # Repair on the spot rather than make a job wait for the periodic tick behind a slot nobody needs
            # (an ended holder whose release was lost, an unknown outcome past its bound).
            repaired = self.repair(snap)
            if repaired:
                count("SlotsRepaired", len(repaired))
                snap = self.snapshot()
                candidates = snap.free_below_limit()
        # Concurrent acquirers would all race for the lowest free index; a random order spreads them out.
        self._rng.shuffle(candidates)
        now = iso(self._clock())
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

    # ----- effective limit (AIMD) --------------------------------------------------------------------
    def throttled(self, job_id: str) -> Limit:
        """Magic Hour answered 429 to `job_id`'s create: lower the effective limit, once per back-off window.

        The projects of ours it had accepted (the other held slots) measure what the plan really allows, so the
        limit drops to that (below the current one, at least 1), not blindly to half: a MaxJobsInFlight of 8
        against a plan of 2 lands on 2 at the first 429 instead of oscillating 1-2-3. When none of ours were in
        flight, the 429 says nothing about our concurrency (a rate limit, another tool on the key): halve.
        """
        snap = self.snapshot()
        seen = snap.limit
        now = self._clock()
        if seen.backing_off(now):
            return seen  # this burst's first 429 has already lowered it
        others = len([s for s in snap.held if s.holder != job_id])
        lowered = min(max(1, others), seen.effective - 1) if others else seen.effective // 2
        lowered = max(1, lowered)
        until = now + self.backoff
        if self._write_limit(seen, lowered, until):
            count("AdmissionLimitLowered")
            logger.warning(
                "Magic Hour throttled a create; in-flight limit lowered",
                extra={
                    "effective_limit": lowered,
                    "previous_limit": seen.effective,
                    "accepted_in_flight": others,
                    "backoff_until": iso(until),
                },
            )
            return Limit(lowered, seen.maximum, lowered, until)
        return self.limit()  # someone else changed it first: theirs stands

    def succeeded(self, seen: Limit | None = None) -> Limit:
        """A project finished well: raise the effective limit by one towards the maximum (no write at the top)."""
        seen = seen or self.limit()
        if seen.effective >= seen.maximum and (seen.stored is None or seen.stored == seen.effective):
            return seen
        if seen.backing_off(self._clock()):
            return seen
        raised = min(seen.maximum, seen.effective + 1)
        if self._write_limit(seen, raised, seen.backoff_until):
            return Limit(raised, seen.maximum, raised, seen.backoff_until)
        return seen  # a concurrent change (a 429, or another success) wins; the next success tries again

    def _write_limit(self, seen: Limit, value: int, backoff_until: datetime | None) -> bool:
        """Compare-and-set on the stored value, so concurrent 429s halve once and increases never skip a halving."""
        values: dict[str, Any] = {":v": {"N": str(value)}, ":u": {"S": iso(self._clock())}}
        update = "SET effective = :v, updated_at = :u"
        if backoff_until is not None:
            update += ", backoff_until = :b"
            values[":b"] = {"S": iso(backoff_until)}
        if seen.stored is None:
            condition = "attribute_not_exists(effective)"
        else:
            condition = "effective = :seen"
            values[":seen"] = {"N": str(seen.stored)}
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": LIMIT_KEY}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # ----- the waiting line --------------------------------------------------------------------------
    def oldest_waiting(self, limit: int) -> list[Job]:
        """Up to `limit` waiting jobs, oldest upload first (by-status GSI, sorted by created_at)."""
        if limit <= 0:
            return []
        resp = self.client.query(
            TableName=self.table,
            IndexName=BY_STATUS_INDEX,
            KeyConditionExpression="#s = :w",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":w": {"S": WAITING}},
            ScanIndexForward=True,
            Limit=limit,
        )
        return [Job.from_item(i) for i in resp.get("Items", [])]

    def count_waiting(self) -> int:
        """Approximate (GSI) number of waiting jobs; a COUNT query reads no attributes back."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BY_STATUS_INDEX,
            "KeyConditionExpression": "#s = :w",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":w": {"S": WAITING}},
            "Select": "COUNT",
        }
        total = 0
        while True:
            resp = self.client.query(**kwargs)
            total += int(resp.get("Count", 0))
            if "LastEvaluatedKey" not in resp:
                return total
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # ----- reconciliation: the jobs table is the truth the slots are checked against -----------------
    def reconcile(self) -> Reconciliation:
        """Free every slot whose holder has ended, never existed, or holds it past the unknown-outcome bound.

        Emits JobsInFlight, JobsWaiting and SlotsRepaired (0 when healthy); each repair is logged with its reason.
        """
        snap = self.snapshot()
        held = snap.held
        repaired = self.repair(snap)
        result = Reconciliation(
            in_flight=len(held) - len(repaired),
            waiting=self.count_waiting(),
            effective_limit=snap.limit.effective,
            repaired=tuple(repaired),
        )
        count("JobsInFlight", result.in_flight)
        count("JobsWaiting", result.waiting)
        count("SlotsRepaired", len(repaired))
        logger.info(
            "admission reconciled",
            extra={
                "in_flight": result.in_flight,
                "waiting": result.waiting,
                "effective_limit": result.effective_limit,
                "repaired": [r.reason for r in repaired],
            },
        )
        return result

    def repair(self, snap: Snapshot) -> list[Repair]:
        """Free the leaked slots of `snap` (read their holders' records; conditional deletes), each logged."""
        held = snap.held
        records = self._batch_get([s.holder for s in held if s.holder]) if held else {}
        jobs = {k: Job.from_record(v) for k, v in records.items()}
        now = self._clock()
        repaired: list[Repair] = []
        for slot in held:
            assert slot.holder is not None  # held slots have holders
            reason = self.leak_reason(slot, jobs.get(slot.holder), now)
            if reason and self._free(slot):
                repaired.append(Repair(slot.slot_id, slot.holder, reason))
                logger.warning(
                    "slot repaired: its holder no longer needs it",
                    extra={"slot": slot.slot_id, "job_id": slot.holder, "reason": reason},
                )
        return repaired

    def _may_have_leaks(self, snap: Snapshot) -> bool:
        """Some held slot is older than a leak could be young: worth reading its holder before making a job wait."""
        oldest = self._clock() - min(self.grace, self.unknown_outcome_hold)
        return any((_parse_ts(s.acquired_at) or oldest) < oldest for s in snap.held)

    def leak_reason(self, slot: Slot, job: Job | None, now: datetime) -> str | None:
        """Why `slot` should be freed now, or None while its holder may still legitimately need it."""
        acquired = _parse_ts(slot.acquired_at) or now
        held_for = now - acquired
        if job is None:
            # The record is written before a slot is taken, so a holder without one is a leftover.
            return "holder_missing" if held_for > self.grace else None
        if job.slot and job.slot != slot.slot_id and held_for > self.grace:
            return "holder_holds_another_slot"  # two racing dispatches of one job: the loser's slot
        if job.status == JobStatus.SUBMITTING or job.is_ambiguous:
            # The project may exist and be rendering: freed on evidence (its ending path), or after the bound.
            return "unknown_outcome_past_bound" if held_for > self.unknown_outcome_hold else None
        if job.status == JobStatus.WAITING:
            return "holder_waiting" if held_for > self.grace else None
        if job.is_terminal:
            ended = _parse_ts(job.updated_at) or acquired
            return f"holder_{job.status.value}" if now - ended > self.grace else None
        return None  # queued / rendering: its poll bound and the sweeper end it, and that releases the slot

    def _free(self, slot: Slot) -> bool:
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


class Slots:
    """What an ending path does with its job's slot: give it back (exactly once, whoever calls), and wake the
    dispatcher so the oldest waiting job starts now rather than at the next periodic tick."""

    def __init__(self, admission: Admission | None, wake: Callable[[str], None]) -> None:
        self.admission = admission
        self._wake = wake

    def finished(self, job_id: str, slot: str | None, *, succeeded: bool, why: str) -> bool:
        """The job's project is finished at Magic Hour (or never will be): free its slot. True if this call did."""
        if self.admission is None or not slot or not self.admission.release(slot, job_id):
            return False
        count("SlotsReleased")
        if succeeded:
            self.admission.succeeded()
        self.wake(why)
        return True

    def give_back(self, job_id: str, slot: str | None) -> bool:
        """Free a slot without waking anyone: the create was refused or not attempted, so starting another job at
        once would only meet the same refusal (the next finish, or the periodic tick, dispatches)."""
        return bool(self.admission and slot and self.admission.release(slot, job_id))

    def wake(self, why: str) -> None:
        try:
            self._wake(why)
        except Exception:
            # Best effort: the periodic tick dispatches whatever a lost wake-up leaves waiting.
            count("DispatchWakeFailed")
            logger.exception("could not request a dispatch", extra={"why": why})


def admission_for(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Admission | None:
    """A function's admission, or None when it is off (MAX_JOBS_IN_FLIGHT 0 or unset)."""
    if settings.max_jobs_in_flight <= 0:
        return None
    hold = min(UNKNOWN_OUTCOME_HOLD_CAP, timedelta(seconds=settings.poll_max_wait_seconds))
    return Admission(
        settings.jobs_table,
        settings.max_jobs_in_flight,
        clock=clock,
        grace=min(DEFAULT_GRACE, hold),
        unknown_outcome_hold=hold,
    )


__all__ = [
    "LIMIT_KEY",
    "MAX_SLOTS",
    "SLOT_PREFIX",
    "WAITING",
    "Acquired",
    "Admission",
    "Limit",
    "Reconciliation",
    "Repair",
    "Slot",
    "Slots",
    "Snapshot",
    "admission_for",
    "slot_key",
]
