"""The finalize lease: one S3 write and one event per job, even with the webhook and a poll racing to finish it.

Three rows of the transitions table in job_store.py (begin_finalize, end_finalize, complete), each one conditional
write (job_write.py); `JobStore` holds one and answers them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
        now = self.clock()
        expr = Expression()
        free = f"(attribute_not_exists({expr.name('finalize_until')}) OR {expr.name('finalize_until')} < "
        free += f"{expr.value(iso(now))})"
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
            set_={"finalize_until": iso(now + timedelta(seconds=lease_seconds)), "finalize_token": token},
            stamp=False,
        )

    def end_finalize(self, job_id: str, token: str) -> None:
        """Give the lease back after a failed attempt so the retry need not wait for it to expire."""
        self._writer.write(job_id, None, guard={"finalize_token": token}, remove=LEASE, stamp=False)

    def complete(self, job_id: str, token: str, attrs: dict[str, Any]) -> bool:
        """Mark complete, only by the lease holder. True exactly once per job."""
        return self._writer.write(
            job_id,
            JobStatus.COMPLETE,
            guard={"finalize_token": token},
            set_=attrs,
            remove=(*LEASE, "error_code", "error_message"),
        )
