"""The submit path: one upload → at most one Magic Hour create, recorded in the jobs table.

Order matters for money: filter → inspect → validate (all free) → take an in-flight slot → asset URLs → claim the
job (a conditional insert) → reserve budget → create → record. The claim is the only licence to create; a claim
found stale (its owner died mid-create) is resolved as an ambiguous create, never re-created. A spent budget parks
the upload.

Admission (admission.py): with no slot free the upload is recorded `waiting` and its message acknowledged (no
receive spent, never a DLQ however long it waits); a dispatch message (sent by whoever frees a slot, or by the
periodic tick) starts the oldest waiting jobs here (waiting_line.py), so every create stays in this function.
A 429 on a create is backpressure, not a failure: the job waits again and the effective limit drops to what Magic
Hour accepted.

Where each part lives: this module (entry points, filters, inspection, the upload's path up to the create),
waiting_line.py (waiting and dispatch), paid_create.py (the create, its outcomes, a job claimed already); the
`Submitter` holds one of each, built in its constructor.
"""

from __future__ import annotations

from typing import Any

from cutout.admission.budget import CreditBudget
from cutout.admission.slots import Snapshot
from cutout.aws import s3_events
from cutout.aws.inspection import Inspected, background_key, inspect_upload, problem, skip_reason
from cutout.aws.s3_events import ObjectRef, Skip
from cutout.domain.errors import BudgetExhausted, InvalidBackground
from cutout.domain.job import Claim, SourceObject
from cutout.domain.messages import DispatchMessage
from cutout.domain.models import JobStatus, job_id_for
from cutout.domain.outcomes import SubmitKind, SubmitOutcome
from cutout.magic_hour.assets import Assets
from cutout.runtime import time_budget
from cutout.runtime.observability import bind_job, clear_job, count, logger
from cutout.use_cases.collaborators import Collaborators, JobEnding
from cutout.use_cases.paid_create import AfterCreate, PaidCreate
from cutout.use_cases.waiting_line import WaitingLine

# A spent budget lasts until the next UTC day (or a raised budget). Failing the record would spend one of its
# receives per visibility timeout and dead-letter it within minutes (maxReceiveCount), so the message is sent
# back to its own queue with SQS's longest delay (a fresh receive count) and only then acknowledged.
PARK_DELAY_SECONDS = 900


class Submitter:
    """The submit path for uploads; it holds the paid create and the waiting line (module docstring)."""

    def __init__(
        self,
        common: Collaborators,
        ending: JobEnding,
        *,
        after_create: AfterCreate | None = None,
        park_delay_seconds: int = PARK_DELAY_SECONDS,
    ) -> None:
        self.settings, self.store, self.magic_hour = common.settings, common.store, common.magic_hour
        self.dispatch, self.admission, self.slots = common.dispatch, ending.admission, ending.slots
        self.assets = Assets(common.settings, common.magic_hour)
        self.budget = CreditBudget(common.counters, common.settings.daily_credit_budget, common.clock)
        self.paid = PaidCreate(common, ending, self.assets, self.budget, after_create)
        self.waiting_line = WaitingLine(common, ending, self.paid)
        self.park_delay_seconds = park_delay_seconds

    # ----- entry points: one ingest message, or a direct S3/EventBridge event -------------------------
    def handle_message(self, body: str) -> list[SubmitOutcome]:
        """One ingest-queue message. A spent budget parks the whole message (re-sent delayed, then acknowledged);
        if parking fails the error propagates so the message itself comes back."""
        wake = DispatchMessage.from_json(body)
        if wake is not None:
            return self.waiting_line.dispatch_waiting(wake.reason, wake.suspect)
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
        # Each key the event may name passes the filters on its own (s3_events.py: an EventBridge key may be
        # read two ways); the reason given is the presumed key's.
        keys = [key for key in ref.candidates if skip_reason(ref._replace(key=key), self.settings) is None]
        if not keys:
            reason = skip_reason(ref, self.settings) or "outside_input_prefix"
            count("Skipped")
            logger.info("object skipped", extra={"skip_reason": reason, "bucket": ref.bucket})
            return SubmitOutcome(SubmitKind.SKIPPED, reason)
        inspected = inspect_upload(ref, keys)
        if inspected is None:
            # Deleted before it was processed (S3 answered 404 to every key): a terminal record that says so, no
            # create, nothing retried and nothing in a DLQ. A 403 raised instead (inspection.py).
            job_id = job_id_for(ref.bucket, ref.key, ref.etag or "missing")
            source = SourceObject(ref.bucket, ref.key, ref.etag, ref.version_id, ref.size)
            looked = " or ".join(repr(k) for k in keys)
            return self._reject(
                job_id, source, "object_missing", f"the object no longer exists (deleted before processing): {looked}"
            )
        return self._submit_inspected(ref, inspected)

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
        early = self._reject(job_id, source, *refused) if refused else self._known_already(job_id)
        if early is not None:
            return early
        snap = None
        if self.admission is not None:
            snap = self.admission.room()
            if not snap.free_below_limit():
                return self.waiting_line.wait(job_id, source)
        # From here the record calls Magic Hour (a job that waits does not, so it is not held up by the clock).
        # Nothing is held yet: too little time left sends the record back as it came (sqs_batch.py).
        time_budget.require(self.magic_hour.worst_case_seconds)
        # Presigned at dispatch, not before: a URL made when the upload arrived could expire while it waits. S3
        # refusing (a real denial: 403) or failing raises: nothing is claimed yet, the message comes back.
        try:
            image_url, background_url = self.assets.urls(source)
        except InvalidBackground as exc:
            return self._reject(job_id, source, "background_invalid", str(exc))
        taken = self._claim(job_id, source, snap)
        if taken is None:
            return self.waiting_line.wait(job_id, source)  # every free slot was taken meanwhile
        slot, claim = taken
        if not claim.won:
            return self.paid.already_claimed(claim.existing, job_id)
        try:
            budget_day = self.budget.reserve()
        except BudgetExhausted:
            self.store.release_claim(job_id, claim.token)
            self.slots.give_back(job_id, slot)
            raise
        webhooks = snap is not None and snap.webhooks_arrive(self.paid.clock())
        return self.paid.create_and_record(
            job_id, claim.token, slot, budget_day, image_url, background_url, webhooks_arrive=webhooks
        )

    def _known_already(self, job_id: str) -> SubmitOutcome | None:
        """Uploading the bytes to Magic Hour is real work: a redelivery should not repeat it for a job that exists
        already (presigning is free, so the presign mode relies on the claim alone)."""
        if self.settings.asset_transfer != "upload":
            return None
        existing = self.store.get(job_id)
        if existing is not None and existing.status != JobStatus.RETRY_PENDING:  # a retry goes on to the claim
            return self.paid.already_claimed(existing, job_id)
        return None

    def _claim(self, job_id: str, source: SourceObject, snap: Snapshot | None) -> tuple[str | None, Claim] | None:
        """Claim the job, with a slot of `snap` when admission is on: the slot and the claim in one transaction,
        both or neither (control.Admission.take_with). None when every free slot was taken meanwhile."""
        if self.admission is None or snap is None:
            return None, self.store.claim(job_id, source)
        return self.admission.take_with(
            job_id, snap, lambda slot_id, put: (slot_id, self.store.claim(job_id, source, slot=slot_id, slot_put=put))
        )

    def _reject(self, job_id: str, source: SourceObject, code: str, message: str) -> SubmitOutcome:
        bind_job(job_id=job_id)
        self.store.reject(job_id, source, code, message)
        count("Rejected")
        logger.warning("upload rejected", extra={"error_code": code, "error_message": message})
        return SubmitOutcome(SubmitKind.REJECTED, code, job_id)


__all__ = ["PARK_DELAY_SECONDS", "AfterCreate", "Submitter"]
