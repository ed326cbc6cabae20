"""The submit path: one upload → at most one Magic Hour create, recorded in the jobs table.

Order matters for money: filter → inspect → validate (all free) → take an in-flight slot → asset URLs → claim the
job (a conditional insert) → reserve budget → create → record. The claim is the only licence to create; a claim
found stale (its owner died mid-create) is resolved as an ambiguous create, never re-created. A spent budget parks
the upload.

Admission (admission.py): with no slot free the upload is recorded `waiting` and its message acknowledged (no
receive spent, never a DLQ however long it waits); a dispatch message (sent by whoever frees a slot, or by the
periodic tick) starts the oldest waiting jobs here, so every create stays in this function. A 429 on a create is
backpressure, not a failure: the job waits again and the effective limit drops to what Magic Hour accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cutout import s3_events, secrets
from cutout.admission import Acquired
from cutout.assets import Assets
from cutout.budget import CreditBudget
from cutout.config import Settings
from cutout.errors import (
    AmbiguousCreate,
    BudgetExhausted,
    ConfigurationError,
    InputRejected,
    InvalidBackground,
    MagicHourError,
    NotCreated,
    RetryLater,
)
from cutout.inspection import Inspected, background_key, inspect_upload, problem
from cutout.job import Job, SourceObject
from cutout.job_store import JobStore
from cutout.magic_hour import CreateResult
from cutout.messages import DispatchMessage
from cutout.models import Clock, JobStatus, job_id_for, project_name, utc_now
from cutout.observability import bind_job, clear_job, count, logger
from cutout.outcomes import SubmitKind, SubmitOutcome
from cutout.s3_events import ObjectRef, Skip
from cutout.use_case import UseCase

# A spent budget lasts until the next UTC day (or a raised budget). Failing the record would spend one of its
# receives per visibility timeout and dead-letter it within minutes (maxReceiveCount), so the message is sent
# back to its own queue with SQS's longest delay (a fresh receive count) and only then acknowledged.
PARK_DELAY_SECONDS = 900

AfterCreate = Callable[[str, str], None]
"""Called with (job id, project id) between the create and its record: the soak's "worker killed here"."""


class Submitter(UseCase):
    def __init__(
        self,
        settings: Settings,
        store: JobStore | None = None,
        *,
        clock: Clock = utc_now,
        after_create: AfterCreate | None = None,
        park_delay_seconds: int = PARK_DELAY_SECONDS,
    ) -> None:
        super().__init__(settings, store, clock=clock)
        self.assets = Assets(settings, self.magic_hour)
        self.budget = CreditBudget(self.counters, settings.daily_credit_budget, clock)
        self.after_create = after_create
        self.park_delay_seconds = park_delay_seconds

    # ----- entry points: one ingest message, or a direct S3/EventBridge event -------------------------
    def handle_message(self, body: str) -> list[SubmitOutcome]:
        """One ingest-queue message. A spent budget parks the whole message (re-sent delayed, then acknowledged);
        if parking fails the error propagates so the message itself comes back."""
        wake = DispatchMessage.from_json(body)
        if wake is not None:
            return self.dispatch_waiting(wake.reason)
        try:
            return self.submit_all(s3_events.parse_text(body))
        except BudgetExhausted:
            self.dispatch.park(body, self.park_delay_seconds)
            count("BudgetParked")
            logger.info("upload parked until the budget allows it", extra={"delay_seconds": self.park_delay_seconds})
            return [SubmitOutcome(SubmitKind.PARKED, "budget_exhausted")]

    def handle_event(self, event: Any) -> list[SubmitOutcome]:
        return self.submit_all(s3_events.parse(event))

    def submit_all(self, parsed: list[s3_events.Parsed]) -> list[SubmitOutcome]:
        outcomes = []
        for item in parsed:
            try:
                outcomes.append(self.submit(item))
            finally:
                clear_job()  # one object's log keys never leak into the next
        return outcomes

    # ----- the whole path for one object ------------------------------------------------------------
    def submit(self, ref: ObjectRef | Skip) -> SubmitOutcome:
        if isinstance(ref, Skip):
            count(f"Skipped_{ref.reason}")
            logger.info("event skipped", extra={"skip_reason": ref.reason, "detail": ref.detail})
            return SubmitOutcome(SubmitKind.SKIPPED, ref.reason)
        bind_job(source_key=ref.key)
        reason = self.skip_reason(ref)
        if reason:
            count("Skipped")
            logger.info("object skipped", extra={"skip_reason": reason, "bucket": ref.bucket})
            return SubmitOutcome(SubmitKind.SKIPPED, reason)
        inspected = inspect_upload(ref)
        if inspected is None:
            job_id = job_id_for(ref.bucket, ref.key, ref.etag or "missing")
            source = SourceObject(ref.bucket, ref.key, ref.etag, ref.version_id, ref.size)
            return self._reject(
                job_id, source, "object_missing", "the object no longer exists (deleted before processing)"
            )
        return self._submit_inspected(ref, inspected)

    def skip_reason(self, ref: ObjectRef) -> str | None:
        """Filters (free, no record)."""
        s = self.settings
        if s.source_bucket and ref.bucket != s.source_bucket:
            return "wrong_bucket"
        if ref.key.endswith("/"):
            return "folder_marker"
        if not ref.key.startswith(s.input_prefix):
            return "outside_input_prefix"
        # Recursion guard: our own output must never become input, whatever the trigger's filter says.
        if ref.bucket == s.output_bucket_for(ref.bucket) and s.output_prefix and ref.key.startswith(s.output_prefix):
            return "output_prefix"
        return None

    def _submit_inspected(self, ref: ObjectRef, inspected: Inspected) -> SubmitOutcome:
        job_id = job_id_for(ref.bucket, inspected.key, inspected.etag)
        bind_job(job_id=job_id, source_key=inspected.key)
        source = SourceObject(
            bucket=ref.bucket,
            key=inspected.key,
            etag=inspected.etag,
            version_id=inspected.version_id,
            size=inspected.size,
            background_key=background_key(inspected, self.settings),
        )
        refused = problem(inspected, self.settings)
        if refused:
            return self._reject(job_id, source, *refused)
        if self.settings.asset_transfer == "upload":
            # Uploading the bytes to Magic Hour is real work: a redelivery should not repeat it for a job that
            # exists already (presigning is free, so the presign mode relies on the claim alone).
            existing = self.store.get(job_id)
            if existing is not None:
                return self._already_claimed(existing, job_id)
        acquired: Acquired | None = None
        if self.admission is not None:
            acquired = self.admission.acquire(job_id)
            if acquired is None:
                return self._wait(job_id, source)
        # Presigned at dispatch, not before: a URL made when the upload arrived could expire while it waits.
        try:
            image_url, background_url = self.assets.urls(source)
        except InvalidBackground as exc:
            self._give_back(acquired, job_id)
            return self._reject(job_id, source, "background_invalid", str(exc))
        slot = acquired.slot_id if acquired else None
        claim = self.store.claim(job_id, source, slot=slot)
        if not claim.won:
            self._give_back(acquired, job_id)
            return self._already_claimed(claim.existing, job_id)
        try:
            budget_day = self.budget.reserve()
        except BudgetExhausted:
            self.store.release_claim(job_id, claim.token)
            self.slots.give_back(job_id, slot)
            raise
        return self._create_and_record(job_id, claim.token, slot, budget_day, image_url, background_url)

    # ----- waiting for a slot, and dispatch --------------------------------------------------------------
    def _wait(self, job_id: str, source: SourceObject) -> SubmitOutcome:
        """No slot free: record the job `waiting` (free, visible) and acknowledge its message."""
        claim = self.store.wait(job_id, source)
        if not claim.won:
            return self._already_claimed(claim.existing, job_id)
        count("JobsQueuedToWait")
        logger.info("no in-flight slot free; the job waits")
        # A slot freed between our look and our record would have found nobody waiting: look once more.
        if self.admission is not None and self.admission.snapshot().free_below_limit():
            self.dispatch_waiting("recheck")
        return SubmitOutcome(SubmitKind.WAITING, "no_free_slot", job_id)

    def dispatch_waiting(self, reason: str) -> list[SubmitOutcome]:
        """Start waiting jobs, oldest upload first, while slots are free. Stops at the first job Magic Hour (or the
        budget) refuses: the next would meet the same answer."""
        outcomes: list[SubmitOutcome] = []
        if self.admission is None:
            return outcomes
        for job in self.admission.oldest_waiting(self.admission.max_in_flight):
            acquired = self.admission.acquire(job.job_id)
            if acquired is None:
                break
            token = self.store.dispatch(job.job_id, acquired.slot_id)
            if token is None:
                # Someone else dispatched it first (or it is no longer waiting): keep nothing we took.
                self._give_back(acquired, job.job_id)
                continue
            try:
                bind_job(job_id=job.job_id, source_key=job.source_key)
                outcome = self._start(job, token, acquired.slot_id)
            finally:
                clear_job()
            outcomes.append(outcome)
            if outcome.kind == SubmitKind.WAITING:
                break
        started = len([o for o in outcomes if o.kind == SubmitKind.SUBMITTED])
        if started:
            count("Dispatched", started)
        logger.info("dispatch finished", extra={"reason": reason, "outcomes": [str(o.kind) for o in outcomes]})
        return outcomes

    def _start(self, job: Job, token: str, slot: str) -> SubmitOutcome:
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
            image_url, background_url = self.assets.urls(source)
        except InvalidBackground as exc:
            self.store.reject_by_magic_hour(job.job_id, token, "background_invalid", str(exc))
            self.slots.finished(job.job_id, slot, succeeded=False, why="rejected")
            count("Rejected")
            return SubmitOutcome(SubmitKind.REJECTED, "background_invalid", job.job_id)
        try:
            budget_day = self.budget.reserve()
        except BudgetExhausted:
            return self._back_to_waiting(job.job_id, token, slot, "budget_exhausted")
        return self._create_and_record(job.job_id, token, slot, budget_day, image_url, background_url, dispatched=True)

    def _back_to_waiting(self, job_id: str, token: str, slot: str | None, reason: str) -> SubmitOutcome:
        self.store.back_to_waiting(job_id, token, reason)
        self.slots.give_back(job_id, slot)
        count("BackToWaiting")
        logger.info("create not made now; the job waits again", extra={"reason": reason})
        return SubmitOutcome(SubmitKind.WAITING, reason, job_id)

    def _give_back(self, acquired: Acquired | None, job_id: str) -> None:
        """Free a slot this call took and will not use (the job was claimed or dispatched by someone else)."""
        if acquired is not None:
            self.slots.give_back(job_id, acquired.slot_id)

    # ----- money ---------------------------------------------------------------------------------------
    def _create_and_record(
        self,
        job_id: str,
        token: str,
        slot: str | None,
        budget_day: str | None,
        image_url: str,
        background_url: str | None,
        *,
        dispatched: bool = False,
    ) -> SubmitOutcome:
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
        self._schedule_first_poll(job_id, created.project_id)
        return SubmitOutcome(SubmitKind.SUBMITTED, "", job_id, created.project_id)

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
        Hour did: refused → slot freed; unknown → slot kept (admission.py); not made → the job waits again (a 429,
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
            return self._mark_ambiguous(job_id, str(exc))
        except MagicHourError as exc:
            # Provably not created (or refused for configuration/billing).
            self.budget.release(budget_day)
            count(f"CreateFailed_{type(exc).__name__}")
            if isinstance(exc, ConfigurationError) and exc.status == 401:
                self.magic_hour.forget()  # re-read the key next time: it may have been rotated
            logger.error(
                "create not performed",
                extra={"error": type(exc).__name__, "status": exc.status, "error_code": exc.code},
            )
            if isinstance(exc, NotCreated) and exc.status == 429 and self.admission is not None:
                # Magic Hour's plan is full: backpressure, not a failure. Learn the limit, wait, retry later.
                self.admission.throttled(job_id)
                count("CreateThrottled")
                return self._back_to_waiting(job_id, token, slot, "throttled_429")
            if dispatched:
                return self._back_to_waiting(job_id, token, slot, f"{type(exc).__name__} {exc.status or ''}".strip())
            self.store.release_claim(job_id, token)
            self.slots.give_back(job_id, slot)
            raise RetryLater(f"{type(exc).__name__}: {exc}") from None
        except secrets.SecretUnavailable:
            self.budget.release(budget_day)
            if dispatched:
                self._back_to_waiting(job_id, token, slot, "secret_unavailable")
            else:
                self.store.release_claim(job_id, token)
                self.slots.give_back(job_id, slot)
            raise

    def _already_claimed(self, existing: Job | None, job_id: str) -> SubmitOutcome:
        if existing is None:
            # The claim lost to a record that was gone when read back (released in between): nothing to do here.
            count("Duplicates")
            return SubmitOutcome(SubmitKind.DUPLICATE, "gone", job_id)
        claimed = existing.claimed
        if existing.status == JobStatus.SUBMITTING:
            lease = timedelta(seconds=self.settings.submit_lease_seconds)
            if claimed is not None and self.clock() - claimed < lease:
                # Another worker is creating this very job right now: come back later and see how it went.
                count("DuplicatesInFlight")
                logger.info("duplicate delivery while the first is in flight; retrying later")
                raise RetryLater("job is being submitted by another worker")
            return self._mark_ambiguous(
                existing.job_id, "the worker that claimed this job stopped before recording the create"
            )
        count("Duplicates")
        logger.info("duplicate delivery; job already exists", extra={"existing_status": existing.status})
        return SubmitOutcome(SubmitKind.DUPLICATE, str(existing.status), existing.job_id)

    def _mark_ambiguous(self, job_id: str, why: str) -> SubmitOutcome:
        self.store.mark_ambiguous(job_id, why)
        count("AmbiguousCreates")
        logger.error("create outcome unknown; not retried (no idempotency key at Magic Hour)", extra={"why": why})
        return SubmitOutcome(SubmitKind.AMBIGUOUS, why, job_id)

    def _schedule_first_poll(self, job_id: str, project_id: str) -> None:
        try:
            self.dispatch.first_check(job_id, project_id)
        except Exception:
            # The job is recorded and the webhook may still complete it; the sweeper catches it otherwise.
            count("PollScheduleFailed")
            logger.exception("could not schedule the first status check")

    def _reject(self, job_id: str, source: SourceObject, code: str, message: str) -> SubmitOutcome:
        bind_job(job_id=job_id)
        self.store.reject(job_id, source, code, message)
        count("Rejected")
        logger.warning("upload rejected", extra={"error_code": code, "error_message": message})
        return SubmitOutcome(SubmitKind.REJECTED, code, job_id)
