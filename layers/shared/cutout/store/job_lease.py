"""The finalize lease: one S3 write and one event per job, even with the webhook and a poll racing to finish it.

Three rows of the transitions table in job_store.py (begin_finalize, end_finalize, complete), each one conditional
write (job_write.py); `JobStore` holds one and answers them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cutout.domain.job import Job
from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, IN_FLIGHT, JobStatus, iso
from cutout.store.dynamo_expressions import Expression
from cutout.store.job_write import LEASE, JobWriter


class FinalizeLease:
    """Take, give back and complete under the finalize lease."""

    def __init__(self, writer: JobWriter) -> None:
        self._writer = writer
        self.clock = writer.clock

    # ----- finalization lease: one S3 write and one event per job, even with webhook + poll racing -------
    def begin_finalize(
        self, job_id: str, token: str, lease_seconds: int, *, adopt_ambiguous: bool = False, late: bool = False
    ) -> bool:
        """Take the right to write this job's output. Fails while another finalizer's lease is fresh.
        `late`: the job timed out meanwhile and its paid result has arrived after all (`complete_late`)."""
        expr, free, lease = self._lease(token, lease_seconds)
        allowed = set(IN_FLIGHT) | ({JobStatus.ERROR} if adopt_ambiguous else set())
        if late:
            allowed.add(JobStatus.TIMED_OUT)
        return self._writer.write(
            job_id,
            None,
            from_=allowed,
            error_code_if_error=CREATE_OUTCOME_UNKNOWN if adopt_ambiguous else None,
            condition=free,
            expr=expr,
            set_=lease,
            stamp=False,
        )

    def begin_expected(
        self, job_id: str, token: str, lease_seconds: int, project_id: str
    ) -> tuple[Job | None, Job | None]:
        """`begin_finalize` for the usual completion: a job in progress (queued or rendering) with this very project
        recorded. One write takes the lease and answers the job: (the job, leased, None); when the condition
        refuses, (None, the job as it stands, or None when there is none), as DynamoDB returns it with the refusal.
        Reading the job first and then taking the lease was two calls per image for the same decision."""
        expr, free, lease = self._lease(token, lease_seconds)
        found: list[Job | None] = []
        item = self._writer.write_returning(
            job_id,
            None,
            from_={JobStatus.QUEUED, JobStatus.RENDERING},
            project=(project_id, True),
            condition=free,
            expr=expr,
            set_=lease,
            stamp=False,
            refused=lambda old: found.append(Job.from_item(old) if old else None),
        )
        if item:
            return Job.from_item(item), None
        return None, found[0] if found else None

    def _lease(self, token: str, lease_seconds: int) -> tuple[Expression, str, dict[str, str]]:
        """What taking the lease writes, and its condition: no other finalizer's lease still fresh."""
        now = self.clock()
        expr = Expression()
        free = f"(attribute_not_exists({expr.name('finalize_until')}) OR {expr.name('finalize_until')} < "
        free += f"{expr.value(iso(now))})"
        return expr, free, {"finalize_until": iso(now + timedelta(seconds=lease_seconds)), "finalize_token": token}

    def end_finalize(self, job_id: str, token: str) -> None:
        """Give the lease back after a failed attempt so the retry need not wait for it to expire."""
        self._writer.write(job_id, None, guard={"finalize_token": token}, remove=LEASE, stamp=False)

    def complete(self, job_id: str, token: str, attrs: dict[str, Any]) -> Job | None:
        """Mark complete, only by the lease holder: the completed record exactly once per job, else None."""
        item = self._writer.write_returning(
            job_id,
            JobStatus.COMPLETE,
            guard={"finalize_token": token},
            set_=attrs,
            remove=(*LEASE, "error_code", "error_message"),
        )
        return Job.from_item(item) if item else None
