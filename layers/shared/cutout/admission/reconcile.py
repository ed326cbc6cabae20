"""Reconciliation: the jobs table is the truth the slots are checked against, and the line of waiting jobs.

A slot's holder is named, so each held slot can be checked against its job record: a slot whose holder has ended
(or does not exist, or holds another slot, or has an unknown create outcome past its bound) is freed and counted
(`SlotsRepaired`); nothing leaks forever. Jobs waiting for a slot are found through the `by-status` GSI, which is
eventually consistent: a wake-up missed in that lag is caught by the periodic dispatch (`should_dispatch`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from cutout.admission.slots import Slot, SlotTable, Snapshot, parse_ts
from cutout.domain.job import Job
from cutout.domain.models import JobStatus
from cutout.runtime.observability import count, logger
from cutout.store.job_queries import BY_STATUS_INDEX

WAITING = JobStatus.WAITING.value
UNKNOWN_OUTCOME_PAST_BOUND = "unknown_outcome_past_bound"

# How long a finished (or never dispatched) holder may keep its slot before reconciliation calls it a leak: the
# ending path releases right after its terminal write, so anything older than this was missed, not in progress.
DEFAULT_GRACE = timedelta(seconds=60)
# A slot held by a job whose create has an unknown outcome (a 500 or a reset after the request was sent, a read
# timeout, a worker that died mid-create) is kept for this long after the outcome *became* unknown (the ambiguous
# record was written, or the dead worker's claim lease ran out; never while a live worker is still creating),
# waiting for evidence: the project, named after the job, reports in (webhook, or the sweeper's check) and its
# ending path releases the slot as any other. Without evidence it is freed after this bound (template parameter
# UnknownOutcomeHoldSeconds). Why short:
# - a project that exists was created when the request reached Magic Hour, so by the time the outcome is known to
#   be unknown it has been rendering for the whole request (a read timeout: the whole timeout); admission keeps
#   Magic Hour's queue at most N deep, and the background remover's p50 is 4 s, queueing included: an existing
#   project has usually reported in (and released its slot through its ending path) within one more p50 render.
# - freeing it too early costs little and is handled: one project more than N at Magic Hour for the rest of its
#   render — in a queueing plan one job queued a few seconds (poll bounds count from `rendering`), in a rejecting
#   plan one 429, which puts a job back to waiting (backpressure, no receive, no credit).
# - holding it too long costs a whole slot, idle, for every create that never happened; under the soak's fault mix
#   (10 % 5xx, 3 % resets) that is ~6 % of creates, and a 60 s hold cost a third of the plan's throughput in the
#   flood (docs/scale.md). The submit that records the unknown outcome also schedules a dispatch for when the bound
#   ends, so the slot is reused then rather than at the next periodic tick.
DEFAULT_UNKNOWN_OUTCOME_HOLD = timedelta(seconds=5)
# Most waiting jobs the periodic reconciliation counts (JobsWaiting reads "at least" this many beyond it): a few
# read units a minute whatever the backlog.
WAITING_COUNT_CAP = 1000
# The template's SUBMIT_LEASE_SECONDS default: a `submitting` claim younger than this has a live worker creating.
DEFAULT_SUBMIT_LEASE = timedelta(seconds=120)


class Repair(NamedTuple):  # not a frozen dataclass: ~0.2 ms at import, not ~0.65 (job.py)
    slot_id: str
    holder: str
    reason: str


class Reconciliation(NamedTuple):  # not a frozen dataclass: ~0.2 ms at import, not ~0.65 (job.py)
    in_flight: int
    waiting: int
    effective_limit: int
    repaired: tuple[Repair, ...] = ()

    @property
    def should_dispatch(self) -> bool:
        """Jobs wait while a slot is free: a wake-up was missed (a crash, or the GSI's lag), so dispatch now."""
        return self.waiting > 0 and self.in_flight < self.effective_limit


class Reconciler:
    """Frees leaked slots and reads the waiting line."""

    def __init__(
        self, slots: SlotTable, *, grace: timedelta, unknown_outcome_hold: timedelta, submit_lease: timedelta
    ) -> None:
        self.slots = slots
        self.grace = grace
        self.unknown_outcome_hold = unknown_outcome_hold
        self.submit_lease = submit_lease
        # What ends a `submitting` job whose worker died mid-create once its slot is freed past the bound (set by
        # the use cases' job_ending: admission writes slots, not jobs). Without it a job dispatched from the waiting
        # line, which has no message of its own to come back, stayed `submitting` until the sweeper's stuck bound.
        self.orphaned: Callable[[Job], None] | None = None

    # ----- the waiting line --------------------------------------------------------------------------
    def oldest_waiting(self, limit: int) -> list[Job]:
        """Up to `limit` waiting jobs, oldest upload first (by-status GSI, sorted by created_at)."""
        if limit <= 0:
            return []
        resp = self.slots.client.query(
            TableName=self.slots.table,
            IndexName=BY_STATUS_INDEX,
            KeyConditionExpression="#s = :w",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":w": {"S": WAITING}},
            ScanIndexForward=True,
            Limit=limit,
        )
        return [Job.from_item(i) for i in resp.get("Items", [])]

    def count_waiting(self, max_items: int = WAITING_COUNT_CAP) -> int:
        """Number of waiting jobs (by-status GSI, eventually consistent), counted up to `max_items`.

        The tick runs every minute, and a COUNT query is billed for every index item it reads: counting a
        1,000,000-image backfill in full (~400 MB of index, ~51,000 read units) every minute would cost $10-20 a
        day for one number. Capped, it costs a few read units. Past the cap the metric means "at least"; the
        dispatch only needs to know whether any job waits.

        The paginator's MaxItems counts returned items, and a COUNT query returns none, so the bound is the page
        size (each page evaluates at most `max_items` index items) and stopping once the count reaches the cap:
        fewer than twice the cap's items are read even when DynamoDB's 1 MB limit cuts pages short.
        """
        if max_items <= 0:
            return 0
        pages = self.slots.client.get_paginator("query").paginate(
            TableName=self.slots.table,
            IndexName=BY_STATUS_INDEX,
            KeyConditionExpression="#s = :w",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":w": {"S": WAITING}},
            Select="COUNT",
            PaginationConfig={"PageSize": max_items},
        )
        total = 0
        for page in pages:
            total += int(page.get("Count", 0))
            if total >= max_items:
                break
        return min(total, max_items)

    # ----- reconciliation ----------------------------------------------------------------------------
    def reconcile(self) -> Reconciliation:
        """Free every slot whose holder has ended, never existed, or holds it past the unknown-outcome bound.

        Emits JobsInFlight, JobsWaiting and SlotsRepaired (0 when healthy); each repair is logged with its reason.
        """
        snap = self.slots.snapshot()
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
        records = self.slots.batch_get([s.holder for s in held if s.holder]) if held else {}
        jobs = {k: Job.from_record(v) for k, v in records.items()}
        now = self.slots.clock()
        repaired: list[Repair] = []
        for slot in held:
            assert slot.holder is not None  # held slots have holders
            reason = self.leak_reason(slot, jobs.get(slot.holder), now)
            if reason and self.slots.free(slot):
                repaired.append(Repair(slot.slot_id, slot.holder, reason))
                logger.warning(
                    "slot repaired: its holder no longer needs it",
                    extra={"slot": slot.slot_id, "job_id": slot.holder, "reason": reason},
                )
                self._end_orphan(jobs.get(slot.holder), reason)
        return repaired

    def _end_orphan(self, job: Job | None, reason: str) -> None:
        # Only a claim (an ambiguous record is ended already); the write itself re-checks the claim atomically.
        if job is None or self.orphaned is None or reason != UNKNOWN_OUTCOME_PAST_BOUND:
            return
        if job.status != JobStatus.SUBMITTING:
            return
        try:
            self.orphaned(job)
        except Exception:
            # The slot is free either way; the sweeper's stuck-job bound still ends the job.
            logger.exception("could not record the dead worker's claim as an unknown outcome")

    def suspects(self, snap: Snapshot, suspect: str | None) -> tuple[Slot, ...]:
        """Held slots worth reading the holder of before a job is made to wait: `suspect`'s, and any held longer
        than the grace (a release that never came). Unknown outcomes are checked when their own bound passes (the
        submit that recorded one asks for that) and by the periodic reconciliation, not on every acquire."""
        oldest = self.slots.clock() - self.grace
        return tuple(s for s in snap.held if s.holder == suspect or (parse_ts(s.acquired_at) or oldest) < oldest)

    # One return per holder state: the decision table reads top to bottom, which splitting it would hide.
    def leak_reason(self, slot: Slot, job: Job | None, now: datetime) -> str | None:  # noqa: PLR0911
        """Why `slot` should be freed now, or None while its holder may still legitimately need it."""
        acquired = parse_ts(slot.acquired_at) or now
        held_for = now - acquired
        if job is None:
            # The record is written before a slot is taken, so a holder without one is a leftover.
            return "holder_missing" if held_for > self.grace else None
        if job.slot and job.slot != slot.slot_id and held_for > self.grace:
            return "holder_holds_another_slot"  # two racing dispatches of one job: the loser's slot
        if job.status == JobStatus.SUBMITTING:
            # A live worker is creating right now (its claim is fresh), however long the create takes: never taken
            # from it. Once the claim is stale the worker died mid-create, and the outcome is unknown from then.
            unknown_since = (job.claimed or acquired) + self.submit_lease
            return UNKNOWN_OUTCOME_PAST_BOUND if now - unknown_since > self.unknown_outcome_hold else None
        if job.is_ambiguous:
            # The project may exist and be rendering: freed on evidence (its ending path), or after the bound
            # counted from the ambiguous record (the create may have run long before it became unknown).
            unknown_since = parse_ts(job.updated_at) or acquired
            return UNKNOWN_OUTCOME_PAST_BOUND if now - unknown_since > self.unknown_outcome_hold else None
        if job.status == JobStatus.WAITING:
            return "holder_waiting" if held_for > self.grace else None
        if job.is_terminal:
            ended = parse_ts(job.updated_at) or acquired
            return f"holder_{job.status.value}" if now - ended > self.grace else None
        return None  # queued / rendering: its poll bound and the sweeper end it, and that releases the slot
