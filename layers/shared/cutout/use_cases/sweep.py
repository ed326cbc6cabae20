"""The sweep (scheduled): the safety net for anything the queues lost track of — jobs still in flight past
the poll limit are completed from their project, recorded as ambiguous, or timed out; jobs that timed out
recently get a late check (a paid result is never thrown away); and the admission slots are reconciled.

"Past the limit" counts from when the job was dispatched to Magic Hour (a job may wait for a slot for hours
before that) and, once known, from when its project started rendering — as the poll's bounds do.

The admission tick (`tick`, every minute) is the safety net of the in-flight slots: it frees leaked ones against
the job records and, when jobs wait beside a free slot (a lost wake-up), asks the submit function to dispatch."""

from __future__ import annotations

from datetime import timedelta

from cutout.admission.control import Reconciliation
from cutout.domain.errors import MagicHourError
from cutout.domain.job import Job, parse_time
from cutout.domain.messages import CompletionMessage
from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, MAGIC_HOUR_STATUS, TERMINAL, JobStatus
from cutout.domain.outcomes import SweepOutcome
from cutout.runtime import time_budget
from cutout.runtime.observability import bind_job, count, logger
from cutout.use_cases.collaborators import Collaborators, JobEnding

# How long past the poll limit a job may stay in flight before the sweep resolves it.
GRACE = timedelta(seconds=600)
# Timed-out jobs this recent get a late check of their project each sweep (Magic Hour's download URLs live 24 h,
# and a fresh GET renews them, but a result that has not come in a day is not coming).
LATE_CHECK_WINDOW = timedelta(hours=24)
LATE_CHECK_CREATED_WITHIN = timedelta(days=6)


class Sweeper:
    def __init__(self, common: Collaborators, ending: JobEnding) -> None:
        self.settings, self.clock, self.store = common.settings, common.clock, common.store
        self.magic_hour, self.dispatch = common.magic_hour, common.dispatch
        self.admission, self.slots, self.terminal = ending.admission, ending.slots, ending.terminal

    def sweep(self) -> dict[str, int]:
        limit = timedelta(seconds=self.settings.poll_max_wait_seconds) + GRACE
        cutoff = self.clock() - limit
        stuck = 0
        outcomes: dict[str, int] = {}
        stopped = False
        for status in (JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.RENDERING):
            for job in [] if stopped else self.store.list_by_status(status, created_before=cutoff):
                if not self._past_limit(job, limit):
                    continue
                if not self._time_for_a_call():
                    stopped = True  # the next sweep (15 min) finds the rest: they are still past the limit then
                    break
                stuck += 1
                bind_job(job_id=job.job_id, source_key=job.source_key, project_id=job.project_id)
                result = self._resolve(job)
                outcomes[result] = outcomes.get(result, 0) + 1
        late = 0 if stopped else self._late_checks()
        if late:
            outcomes[SweepOutcome.LATE_COMPLETION_ENQUEUED] = late
        count("StuckJobs", stuck)
        logger.info("sweep finished", extra={"stuck": stuck, "outcomes": outcomes})
        self.tick()
        return outcomes

    def tick(self) -> Reconciliation | None:
        """Reconcile the in-flight slots; wake the dispatcher when jobs wait beside a free slot."""
        if self.admission is None:
            return None
        result = self.admission.reconcile()
        if result.should_dispatch or result.repaired:
            self.slots.wake("tick")
        return result

    def _time_for_a_call(self) -> bool:
        """Whether one more Magic Hour call fits in what is left of the invocation (time_budget.py); when it does
        not, the loop stops: a call cut off by the function timeout would lose the rest of the run's work (the
        tick, the metrics) and leave its job half-resolved."""
        if time_budget.allows(self.magic_hour.worst_case_seconds):
            return True
        count("SweepStoppedForTime")
        logger.info("too little time left for another Magic Hour call; the next sweep goes on")
        return False

    def _past_limit(self, job: Job, limit: timedelta) -> bool:
        """Past the limit counted from when the job reached Magic Hour (dispatched from waiting: `claimed_at`) and
        from when its project started rendering; Magic Hour's queue gets QUEUED_BOUND_FACTOR times that."""
        from cutout.use_cases.poll import QUEUED_BOUND_FACTOR

        since = self.clock() - limit
        if job.rendering_since is not None:
            return job.rendering_since < since
        started = job.claimed or job.created
        if job.status == JobStatus.QUEUED:
            return started < self.clock() - limit * QUEUED_BOUND_FACTOR
        return started < since

    def _late_checks(self) -> int:
        """Recently timed-out jobs whose project has finished after all: their completion goes to the finalizer,
        which completes them late (or leaves them timed_out if the project failed)."""
        window = self.clock() - LATE_CHECK_WINDOW
        enqueued = 0
        # Uploads older than a week that timed out within the day are not worth a query over every timed-out job.
        for job in self.store.list_by_status(JobStatus.TIMED_OUT, created_after=window - LATE_CHECK_CREATED_WITHIN):
            if not job.project_id or parse_time(job.updated_at) < window:
                continue
            if not self._time_for_a_call():
                break  # the next sweep checks the rest (they stay in the window for a day)
            try:
                project = self.magic_hour().get_project(job.project_id)
            except MagicHourError:
                continue  # the next sweep looks again
            if MAGIC_HOUR_STATUS[project.status] == JobStatus.COMPLETE:
                self.dispatch.completion(CompletionMessage(project=project.raw, source="sweeper", job_id=job.job_id))
                enqueued += 1
        if enqueued:
            count("LateChecksCompleted", enqueued)
        return enqueued

    def _resolve(self, job: Job) -> SweepOutcome:
        if job.status == JobStatus.SUBMITTING or not job.project_id:
            self.terminal.fail(
                job,
                JobStatus.ERROR,
                CREATE_OUTCOME_UNKNOWN,
                "the submit never recorded a Magic Hour project",
                ambiguous=True,
            )
            count("AmbiguousCreates")
            return SweepOutcome.AMBIGUOUS
        try:
            project = self.magic_hour().get_project(job.project_id)
        except MagicHourError as exc:
            self.terminal.fail(job, JobStatus.TIMED_OUT, "timed_out", f"stuck past the limit; last check failed: {exc}")
            return SweepOutcome.TIMED_OUT
        if MAGIC_HOUR_STATUS[project.status] in TERMINAL:
            self.dispatch.completion(CompletionMessage(project=project.raw, source="sweeper", job_id=job.job_id))
            return SweepOutcome.COMPLETION_ENQUEUED
        self.terminal.fail(job, JobStatus.TIMED_OUT, "timed_out", f"still {project.status} past the limit")
        return SweepOutcome.TIMED_OUT
