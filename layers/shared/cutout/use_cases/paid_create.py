"""The one paid call of the submit path and what follows from its outcome, and the handling of a job claimed already.

Whatever fails, the claim, the slot and the budget end consistent with what Magic Hour did (see `_create`). A
claim found stale (its owner died mid-create) is resolved as an ambiguous create, never re-created: Magic Hour has
no idempotency key. Held by the submit path (`Submitter`, submit.py) and its waiting line (waiting_line.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from cutout.admission.budget import CreditBudget
from cutout.domain.errors import (
    AmbiguousCreate,
    InputRejected,
    MagicHourError,
    NotCreated,
    RetryLater,
    SecretUnavailable,
)
from cutout.domain.job import Job
from cutout.domain.models import DEAD_WORKER_CLAIM, JobStatus, project_name
from cutout.domain.outcomes import SubmitKind, SubmitOutcome
from cutout.magic_hour.assets import Assets
from cutout.magic_hour.client import CreateResult
from cutout.runtime.observability import bind_job, count, logger
from cutout.use_cases.collaborators import Collaborators, JobEnding

AfterCreate = Callable[[str, str], None]
"""Called with (job id, project id) between the create and its record: the soak's "worker killed here"."""


class PaidCreate:
    """Create at Magic Hour and record it; what a create outcome means for the claim, the slot and the budget."""

    def __init__(
        self,
        common: Collaborators,
        ending: JobEnding,
        assets: Assets,
        budget: CreditBudget,
        after_create: AfterCreate | None = None,
    ) -> None:
        # The submit's own collaborators (one store, one admission, one clock), shared with its waiting line.
        self.settings, self.clock, self.store = common.settings, common.clock, common.store
        self.magic_hour, self.dispatch = common.magic_hour, common.dispatch
        self.admission, self.slots = ending.admission, ending.slots
        self.assets = assets
        self.budget = budget
        self.after_create = after_create

    def create_and_record(
        self,
        job_id: str,
        token: str,
        slot: str | None,
        budget_day: str | None,
        image_url: str,
        background_url: str | None,
        *,
        dispatched: bool = False,
        webhooks_arrive: bool = False,
    ) -> SubmitOutcome:
        """`webhooks_arrive`: as the slots' reading says (control.Snapshot), for the first status check's time."""
        created = self._create(job_id, token, slot, budget_day, image_url, background_url, dispatched=dispatched)
        if isinstance(created, SubmitOutcome):
            return created
        bind_job(project_id=created.project_id)
        if self.after_create is not None:
            self.after_create(job_id, created.project_id)
        try:
            self.store.mark_queued(job_id, token, created.project_id, created.credits_charged)
        except Exception:
            # The create happened and we could not record it: say so loudly with the project id so a human
            # (or the webhook, which carries the job id in the project name) can tie them together.
            logger.exception("created at Magic Hour but could not record it", extra={"project_id": created.project_id})
            raise
        count("Submitted")
        count("CreditsCharged", created.credits_charged)
        logger.info("job submitted", extra={"credits_charged": created.credits_charged})
        self._schedule_first_poll(job_id, created.project_id, webhooks_arrive)
        return SubmitOutcome(SubmitKind.SUBMITTED, "", job_id, created.project_id)

    def back_to_waiting(self, job_id: str, token: str, slot: str | None, reason: str) -> SubmitOutcome:
        self.store.back_to_waiting(job_id, token, reason)
        self.slots.give_back(job_id, slot)
        self.slots.mark_waiting(wake_if_free=False)  # the next finish starts it again (control.Slots)
        count("BackToWaiting")
        logger.info("create not made now; the job waits again", extra={"reason": reason})
        return SubmitOutcome(SubmitKind.WAITING, reason, job_id)

    def _create(
        self,
        job_id: str,
        token: str,
        slot: str | None,
        budget_day: str | None,
        image_url: str,
        background_url: str | None,
        *,
        dispatched: bool,
    ) -> CreateResult | SubmitOutcome:
        """The one paid call. Whatever fails, the claim, the slot and the budget end consistent with what Magic
        Hour did: refused → slot freed; unknown → slot kept (reconcile.py); not made → the job waits again (a 429,
        or a dispatched job, whose upload message is long acknowledged) or its upload message comes back."""
        try:
            return self.magic_hour().create(image_url, name=project_name(job_id), background_url=background_url)
        except InputRejected as exc:
            self.budget.release(budget_day)
            self.store.reject_by_magic_hour(job_id, token, exc.code, str(exc))
            self.slots.finished(job_id, slot, succeeded=False, why="rejected")
            count("Rejected")
            logger.warning("Magic Hour rejected the input", extra={"error_code": exc.code, "status": exc.status})
            return SubmitOutcome(SubmitKind.REJECTED, exc.code, job_id)
        except AmbiguousCreate as exc:
            return self.mark_ambiguous(job_id, str(exc))
        except MagicHourError as exc:
            # Provably not created (or refused for configuration/billing).
            self.budget.release(budget_day)
            # A 401 has already made the client ask for a forced re-read of the key (MagicHourAccess).
            count(f"CreateFailed_{type(exc).__name__}")
            logger.error(
                "create not performed",
                extra={"error": type(exc).__name__, "status": exc.status, "error_code": exc.code},
            )
            if isinstance(exc, NotCreated) and exc.status == 429 and self.admission is not None:
                # Magic Hour's plan is full: backpressure, not a failure. Learn the limit, wait, retry later.
                self.admission.throttled(job_id)
                count("CreateThrottled")
                return self.back_to_waiting(job_id, token, slot, "throttled_429")
            if dispatched:
                return self.back_to_waiting(job_id, token, slot, f"{type(exc).__name__} {exc.status or ''}".strip())
            self.store.release_claim(job_id, token)
            self.slots.give_back(job_id, slot)
            raise RetryLater(f"{type(exc).__name__}: {exc}") from None
        except SecretUnavailable:
            self.budget.release(budget_day)
            if dispatched:
                self.back_to_waiting(job_id, token, slot, "secret_unavailable")
            else:
                self.store.release_claim(job_id, token)
                self.slots.give_back(job_id, slot)
            raise

    def already_claimed(self, existing: Job | None, job_id: str) -> SubmitOutcome:
        if existing is None:
            # The claim lost to a record that was gone when read back (released in between): nothing to do here.
            count("Duplicates")
            return SubmitOutcome(SubmitKind.DUPLICATE, "gone", job_id)
        claimed = existing.claimed
        if existing.status == JobStatus.SUBMITTING:
            lease = timedelta(seconds=self.settings.submit_lease_seconds)
            if claimed is not None and self.clock() - claimed < lease:
                # Another worker is creating this very job right now. This copy adds nothing: the first delivery's
                # own message is still in flight, and should its worker die, that message comes back and finds the
                # claim stale. Sending this one back too only parked it for a visibility timeout (186 s), which
                # kept the queue from draining behind every burst with a duplicate in it.
                count("DuplicatesInFlight")
                logger.info("duplicate delivery while the first is in flight; dropped")
                return SubmitOutcome(SubmitKind.DUPLICATE, "in_flight", existing.job_id)
            return self.mark_ambiguous(existing.job_id, DEAD_WORKER_CLAIM)
        count("Duplicates")
        logger.info("duplicate delivery; job already exists", extra={"existing_status": existing.status})
        return SubmitOutcome(SubmitKind.DUPLICATE, str(existing.status), existing.job_id)

    def mark_ambiguous(self, job_id: str, why: str) -> SubmitOutcome:
        self.store.mark_ambiguous(job_id, why)
        count("AmbiguousCreates")
        logger.error("create outcome unknown; not retried (no idempotency key at Magic Hour)", extra={"why": why})
        if self.admission is not None:
            # Its slot stays held until evidence or the bound (reconcile.py); ask for a dispatch just after the
            # bound, which frees it then if nothing reported in, instead of leaving it idle until the next tick.
            bound = int(self.admission.unknown_outcome_hold.total_seconds()) + 1
            self.slots.wake("unknown_outcome_bound", bound, suspect=job_id)
        return SubmitOutcome(SubmitKind.AMBIGUOUS, why, job_id)

    def _schedule_first_poll(self, job_id: str, project_id: str, webhooks_arrive: bool) -> None:
        try:
            self.dispatch.first_check(job_id, project_id, webhooks_arrive=webhooks_arrive)
        except Exception:
            # The job is recorded and the webhook may still complete it; the sweeper catches it otherwise.
            count("PollScheduleFailed")
            logger.exception("could not schedule the first status check")
