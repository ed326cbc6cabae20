"""Ending a job in failure: one conditional move, and the "Cutout Failed" event only when the move happened
(so a job is announced once, however many messages race to fail it). The job's in-flight slot is given back then,
except for a create whose outcome is unknown: its project may be rendering (reconcile.py frees it on evidence or
after its bound)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.aws import events_out
from cutout.domain.job import Job
from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, DEAD_WORKER_CLAIM, JobStatus
from cutout.runtime.observability import count, logger
from cutout.store.job_store import JobStore

if TYPE_CHECKING:  # the webhook loads this module without admission (collaborators.py)
    from cutout.admission.control import Slots


class Terminal:
    def __init__(self, store: JobStore, event_bus: str, slots: Slots | None = None) -> None:
        self.store = store
        self.event_bus = event_bus
        self.slots = slots

    def fail(
        self, job: Job, status: JobStatus, code: str, message: str, *, adopting: bool = False, **attrs: Any
    ) -> bool:
        """Move `job` to a failed terminal status and publish it, once. False when it was final already."""
        failed = self.store.fail(job.job_id, status, code, message, adopting=adopting, **attrs)
        if failed is not None:
            count(f"Jobs_{status.value}")
            logger.warning("job failed", extra={"status": status.value, "error_code": code})
            events_out.publish(self.event_bus, events_out.FAILED, failed)
        if failed is not None and self.slots is not None and code != CREATE_OUTCOME_UNKNOWN:
            self.slots.finished(job.job_id, job.slot, succeeded=False, why=status.value)
        return failed is not None

    def orphaned_claim(self, job: Job) -> None:
        """A `submitting` claim whose worker died before recording its create, past the unknown-outcome bound: an
        ambiguous create, as the submit records it when the claim's message comes back (never re-created; its
        project, should it report in, still adopts the job). Only while the claim is still that worker's."""
        if job.claim_token and self.store.mark_ambiguous(job.job_id, DEAD_WORKER_CLAIM, stale_claim=job.claim_token):
            count("AmbiguousCreates")
            logger.error(
                "create outcome unknown; not retried (no idempotency key at Magic Hour)",
                extra={"job_id": job.job_id, "why": DEAD_WORKER_CLAIM},
            )

    def completed(self, job: Job) -> None:
        events_out.publish(self.event_bus, events_out.COMPLETED, job)
