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

Where each part lives: slots.py (the slot and limit items: read, take, give back), admission_limit.py (the
effective limit), reconcile.py (leak repair and the waiting line); this module ties them into `Admission.acquire`,
and `Slots` is what an ending path does with its job's slot.

Slot and limit items carry no `status`, `created_at` or `project_id`, so they never appear in the GSIs, and no
`expires_at`: a held slot must not expire while its job runs (a TTL could only ever free a slot, never leak one,
but the reconciliation already does that with a reason attached).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from cutout.admission.admission_limit import DEFAULT_BACKOFF, AdaptiveLimit
from cutout.admission.reconcile import (
    DEFAULT_GRACE,
    DEFAULT_SUBMIT_LEASE,
    DEFAULT_UNKNOWN_OUTCOME_HOLD,
    WAITING,
    Reconciler,
    Reconciliation,
    Repair,
)
from cutout.admission.slots import LIMIT_KEY, SLOT_PREFIX, Acquired, Limit, Slot, SlotTable, Snapshot, slot_key
from cutout.domain.models import MAX_SLOTS, utc_now
from cutout.runtime.observability import count, logger
from cutout.store.job_write import AlongsideRefused

T = TypeVar("T")

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cutout.runtime.config import Settings


class Admission:
    """Slots for Magic Hour projects in the jobs table (slots.py), the effective limit (admission_limit.py) and
    reconciliation (reconcile.py), tied into one acquire. Thread-safe (no mutable state besides the RNG)."""

    def __init__(
        self,
        table: str,
        max_in_flight: int,
        *,
        client: DynamoDBClient | None = None,
        clock: Callable[[], datetime] = utc_now,
        grace: timedelta = DEFAULT_GRACE,
        unknown_outcome_hold: timedelta = DEFAULT_UNKNOWN_OUTCOME_HOLD,
        submit_lease: timedelta = DEFAULT_SUBMIT_LEASE,
        backoff: timedelta = DEFAULT_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        if not 1 <= max_in_flight <= MAX_SLOTS:
            raise ValueError(f"max_in_flight must be within 1..{MAX_SLOTS}, got {max_in_flight}")
        self.table = table
        self.max_in_flight = max_in_flight
        self.unknown_outcome_hold = unknown_outcome_hold
        self._rng = rng or random.Random()
        # Its parts, each holding the one slot table: what the callers ask of admission is answered below by them.
        self.slot_table = SlotTable(table, max_in_flight, client=client, clock=clock)
        self.adaptive_limit = AdaptiveLimit(self.slot_table, backoff)
        self.reconciler = Reconciler(
            self.slot_table, grace=grace, unknown_outcome_hold=unknown_outcome_hold, submit_lease=submit_lease
        )
        self.snapshot = self.slot_table.snapshot
        self.limit = self.slot_table.limit
        self.release = self.slot_table.release
        self.throttled = self.adaptive_limit.throttled
        self.succeeded = self.adaptive_limit.succeeded
        self.oldest_waiting = self.reconciler.oldest_waiting
        self.count_waiting = self.reconciler.count_waiting
        self.reconcile = self.reconciler.reconcile
        self.repair = self.reconciler.repair

    def room(self, suspect: str | None = None) -> Snapshot:
        """The slots as they stand, after freeing on the spot what keeps a job waiting for nothing rather than leave
        it to the periodic tick: the slot of `suspect` (a job whose create's outcome became unknown, checked when
        its bound has passed) and any slot held longer than a leak could be young (an ended holder whose release
        was lost). Only those holders' records are read: reading every holder whenever all slots are busy (the
        normal state of a flood) cost each upload a 25-record read in the 2,000-upload flood."""
        snap = self.snapshot()
        if snap.free_below_limit():
            return snap
        suspects = self.reconciler.suspects(snap, suspect)
        if suspects:
            repaired = self.repair(Snapshot(suspects, snap.limit))
            if repaired:
                count("SlotsRepaired", len(repaired))
                snap = self.snapshot()
        return snap

    def acquire(self, job_id: str, snap: Snapshot | None = None, *, more_waiting: bool = False) -> Acquired | None:
        """Take a free slot for `job_id`, or None when none is free (the job waits).

        Deliberately not idempotent: every call takes a slot of its own, which its caller either records on the job
        (claim, dispatch) or gives back. Handing a job "its" slot again would let two racing dispatchers share one
        slot, and the loser's give-back would then free the winner's — one project too many at Magic Hour.
        A slot left by a crash between acquire and the record is the reconciliation's (holder_waiting, &c.).
        `snap`: a reading the caller just made (`room`), saving a second read; a slot taken since is skipped.
        `more_waiting`: the caller (a dispatcher) saw jobs waiting behind this one: the slot's release wakes it.
        """
        snap = snap or self.room()
        candidates = snap.free_below_limit()
        # Concurrent acquirers would all race for the lowest free index; a random order spreads them out.
        self._rng.shuffle(candidates)
        return self.slot_table.take_any(job_id, candidates, limit_low=not snap.limit.at_top, waiting=more_waiting)

    def take_with(self, job_id: str, snap: Snapshot, write: Callable[[str, dict[str, Any]], T]) -> T | None:
        """Take a free slot of `snap` for `job_id` in the same transaction as the caller's own write (the claim):
        `write(slot_id, slot_put)` makes both or neither. Tries the free slots in random order (as `acquire`) while
        the slot's put is refused (taken meanwhile); None when every one was. One call where a put and the claim
        were two, and nothing to give back when the claim is lost: the slot was never taken."""
        candidates = snap.free_below_limit()
        self._rng.shuffle(candidates)
        for slot in candidates:
            put = self.slot_table.put_request(slot.slot_id, job_id, limit_low=not snap.limit.at_top, waiting=False)
            try:
                return write(slot.slot_id, put)
            except AlongsideRefused:
                continue
        return None


class Slots:
    """What an ending path does with its job's slot: give it back (exactly once, whoever calls), and wake the
    dispatcher so the oldest waiting job starts now rather than at the next periodic tick.

    A release wakes the dispatcher only when jobs wait: the slot carries the mark (`SlotTable.flag_waiting`, or
    taken by a dispatcher that saw more jobs waiting). Waking on every finish cost each image a message and the
    dispatcher's two reads (the slots, the waiting line) to find nobody waiting, whenever uploads did not queue.
    A job that comes to wait marks the slots held then (`mark_waiting`), so a finish after its record wakes the
    dispatcher; a wake-up missed anyway (the by-status index's lag, a crash) is the periodic tick's, as before."""

    def __init__(self, admission: Admission | None, wake: Callable[[str, int, str | None], None]) -> None:
        self.admission = admission
        self._wake = wake

    def finished(self, job_id: str, slot: str | None, *, succeeded: bool, why: str) -> bool:
        """The job's project is finished at Magic Hour (or never will be): free its slot. True if this call did."""
        if self.admission is None or not slot:
            return False
        freed = self.admission.slot_table.release_item(slot, job_id)
        if freed is None:
            return False
        count("SlotsReleased")
        if succeeded and freed.get("limit_low"):
            self.admission.succeeded()
        if freed.get("waiting"):
            self.wake(why)
        return True

    def give_back(self, job_id: str, slot: str | None) -> bool:
        """Free a slot without waking anyone: the create was refused or not attempted, so starting another job at
        once would only meet the same refusal (the next finish, or the periodic tick, dispatches)."""
        return bool(self.admission and slot and self.admission.release(slot, job_id))

    def mark_waiting(self, *, wake_if_free: bool, snap: Snapshot | None = None) -> None:
        """Jobs wait: mark every slot held now so its release wakes the dispatcher. With `wake_if_free` (an upload
        just recorded waiting, or a dispatcher that started nobody), a slot free by now, or freed before it was
        marked, also wakes the dispatcher at once. Without it (a job sent back to wait by a refused create) a free
        slot is left alone: starting a job on it at once would meet the same refusal. `snap`: a reading just made
        (a dispatcher's), saving the read."""
        if self.admission is None:
            return
        try:
            snap = snap or self.admission.snapshot()
            # Every held slot is marked, even when one is free: the wake-up for the free one may find it taken
            # (an upload, another dispatcher) and start nobody, and the jobs waiting then depend on these marks.
            vanished = self.admission.slot_table.flag_waiting(snap.held)
            if wake_if_free and (vanished or snap.free_below_limit()):
                self.wake("recheck")
        except Exception:
            # Best effort, like a wake-up: the periodic tick dispatches whatever a lost mark leaves waiting.
            count("WaitingMarkFailed")
            logger.exception("could not mark the slots for a waiting job")

    def wake(self, why: str, delay_seconds: int = 0, suspect: str | None = None) -> None:
        try:
            self._wake(why, delay_seconds, suspect)
        except Exception:
            # Best effort: the periodic tick dispatches whatever a lost wake-up leaves waiting.
            count("DispatchWakeFailed")
            logger.exception("could not request a dispatch", extra={"why": why})


def admission_for(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Admission | None:
    """A function's admission, or None when it is off (MAX_JOBS_IN_FLIGHT 0 or unset)."""
    if settings.max_jobs_in_flight <= 0:
        return None
    return Admission(
        settings.jobs_table,
        settings.max_jobs_in_flight,
        clock=clock,
        grace=min(DEFAULT_GRACE, timedelta(seconds=settings.poll_max_wait_seconds)),
        unknown_outcome_hold=timedelta(seconds=settings.unknown_outcome_hold_seconds),
        submit_lease=timedelta(seconds=settings.submit_lease_seconds),
    )


__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_GRACE",
    "DEFAULT_SUBMIT_LEASE",
    "DEFAULT_UNKNOWN_OUTCOME_HOLD",
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
