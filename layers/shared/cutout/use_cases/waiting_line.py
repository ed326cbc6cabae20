"""Jobs waiting for an in-flight slot: recording an upload `waiting`, and starting the oldest on a dispatch message.

With no slot free the upload is recorded `waiting` and its message acknowledged (no receive spent, never a DLQ
however long it waits); a dispatch message (sent by whoever frees a slot, or by the periodic tick) starts the
oldest waiting jobs here, through the same paid path as an upload (paid_create.py), so every create stays in the
submit function.
"""

from __future__ import annotations

from cutout.admission.control import Acquired
from cutout.domain.errors import BudgetExhausted, InvalidBackground
from cutout.domain.job import Job, SourceObject
from cutout.domain.outcomes import SubmitKind, SubmitOutcome
from cutout.runtime import time_budget
from cutout.runtime.observability import bind_job, clear_job, count, logger
from cutout.use_cases.collaborators import Collaborators, JobEnding
from cutout.use_cases.paid_create import PaidCreate

# Creates one dispatch message may start (see `dispatch_waiting`): one, as one upload does, since each message
# stands for one freed slot.
DISPATCH_PER_MESSAGE = 1
# Waiting jobs read past those it may start: concurrent dispatchers (up to the submit's MaximumConcurrency) all read
# the same oldest job; the ones that lose its dispatch go on to the next instead of ending empty-handed. Without
# it, in the 2,000-upload flood three of four dispatchers ended with nothing started, and slots sat idle.
DISPATCH_RACE_MARGIN = 4


class WaitingLine:
    """Wait for a slot, and start waiting jobs through the submit's paid path."""

    def __init__(self, common: Collaborators, ending: JobEnding, paid: PaidCreate) -> None:
        self.store, self.magic_hour = common.store, common.magic_hour
        self.admission, self.slots = ending.admission, ending.slots
        self.paid = paid

    def wait(self, job_id: str, source: SourceObject) -> SubmitOutcome:
        """No slot free: record the job `waiting` (free, visible) and acknowledge its message."""
        claim = self.store.wait(job_id, source)
        if not claim.won:
            return self.paid.already_claimed(claim.existing, job_id)
        count("JobsQueuedToWait")
        logger.info("no in-flight slot free; the job waits")
        # A slot freed between our look and our record found nobody waiting: look once more, and if so ask for a
        # dispatch (a message, not a create here: this invocation's work stays one create per upload); else mark
        # the held slots, so the next finish wakes the dispatcher.
        self.slots.mark_waiting(wake_if_free=True)
        return SubmitOutcome(SubmitKind.WAITING, "no_free_slot", job_id)

    def dispatch_waiting(self, reason: str, suspect: str | None = None) -> list[SubmitOutcome]:
        """Start the oldest waiting job(s), at most DISPATCH_PER_MESSAGE, so a batch of ten dispatch messages makes
        no more creates than a batch of ten uploads and stays inside the function timeout; when that many started
        and another slot was free, the next one is asked for in a fresh message. Stops at the first job Magic
        Hour (or the budget) refuses: the next would meet the same answer.

        The slots are read first: a wake-up that finds none free (several finishes and uploads may have asked for
        the same slot) ends there, without reading the waiting line (measured in the 2,000-upload flood: wake-ups
        piled up faster than the by-status queries behind them could answer, and slots sat idle behind them)."""
        outcomes: list[SubmitOutcome] = []
        if self.admission is None:
            return outcomes
        snap = self.admission.room(suspect)
        free = len(snap.free_below_limit())
        if not free:
            # Woken for a slot that someone took first: an upload that found it free takes it without a mark (it
            # cannot know that jobs wait). Mark it, and any other, so its release wakes the dispatcher: else the
            # jobs waiting would wait for the tick.
            self.slots.mark_waiting(wake_if_free=True, snap=snap)
            logger.info("dispatch: no free slot", extra={"reason": reason})
            return outcomes
        # Before any slot is taken: too little time left defers the dispatch message itself (sqs_batch.py).
        time_budget.require(self.magic_hour.worst_case_seconds)
        line = self.admission.oldest_waiting(min(DISPATCH_PER_MESSAGE, free) + DISPATCH_RACE_MARGIN)
        for place, job in enumerate(line):
            if len(outcomes) >= min(DISPATCH_PER_MESSAGE, free):
                break
            # Jobs seen waiting behind this one: its slot's release must wake the dispatcher again (control.Slots).
            acquired = self.admission.acquire(job.job_id, snap, more_waiting=place + 1 < len(line))
            if acquired is None:
                break
            token = self.store.dispatch(job.job_id, acquired.slot_id)
            if token is None:
                # Someone else dispatched it first (or it is no longer waiting): keep nothing we took.
                self.give_back(acquired, job.job_id)
                continue
            try:
                bind_job(job_id=job.job_id, source_key=job.source_key)
                outcome = self._start(job, token, acquired.slot_id, snap.webhooks_arrive(self.paid.clock()))
            finally:
                clear_job()
            outcomes.append(outcome)
            if outcome.kind == SubmitKind.WAITING:
                break
        if line and not outcomes:
            # Jobs wait and none was started (the free slot was taken meanwhile): mark the slots held now, so their
            # releases wake the dispatcher (and wake it now if one is free again).
            self.slots.mark_waiting(wake_if_free=True)
        started = len([o for o in outcomes if o.kind == SubmitKind.SUBMITTED])
        if started:
            count("Dispatched", started)
        if free > len(outcomes) >= DISPATCH_PER_MESSAGE and outcomes[-1].kind != SubmitKind.WAITING:
            self.slots.wake("continue")
        logger.info("dispatch finished", extra={"reason": reason, "outcomes": [str(o.kind) for o in outcomes]})
        return outcomes

    def _start(self, job: Job, token: str, slot: str, webhooks_arrive: bool) -> SubmitOutcome:
        """A dispatched job (waiting → submitting, slot held): presign now, then the same paid path as an upload."""
        source = SourceObject(
            bucket=job.source_bucket,
            key=job.source_key,
            etag=job.source_etag or "",
            version_id=job.source_version_id,
            size=job.source_size,
            background_key=job.background_key,
        )
        try:
            image_url, background_url = self.paid.assets.urls(source)
        except InvalidBackground as exc:
            self.store.reject_by_magic_hour(job.job_id, token, "background_invalid", str(exc))
            self.slots.finished(job.job_id, slot, succeeded=False, why="rejected")
            count("Rejected")
            return SubmitOutcome(SubmitKind.REJECTED, "background_invalid", job.job_id)
        except Exception:
            # S3 refused or failed (nothing created): the job waits again rather than be left `submitting`, which
            # a later look would take for a worker that died mid-create (an ambiguous create).
            self.paid.back_to_waiting(job.job_id, token, slot, "asset_unavailable")
            raise
        try:
            budget_day = self.paid.budget.reserve()
        except BudgetExhausted:
            return self.paid.back_to_waiting(job.job_id, token, slot, "budget_exhausted")
        return self.paid.create_and_record(
            job.job_id,
            token,
            slot,
            budget_day,
            image_url,
            background_url,
            dispatched=True,
            webhooks_arrive=webhooks_arrive,
        )

    def give_back(self, acquired: Acquired | None, job_id: str) -> None:
        """Free a slot this call took and will not use (the job was claimed or dispatched by someone else)."""
        if acquired is not None:
            self.slots.give_back(job_id, acquired.slot_id)
