"""The sweep (scheduled): the safety net for anything the queues lost track of — jobs still in flight past
the poll limit are completed from their project, recorded as ambiguous, or timed out."""

from __future__ import annotations

from datetime import timedelta

from cutout.errors import MagicHourError
from cutout.job import Job
from cutout.messages import CompletionMessage
from cutout.models import CREATE_OUTCOME_UNKNOWN, MAGIC_HOUR_STATUS, TERMINAL, JobStatus
from cutout.observability import bind_job, count, logger
from cutout.outcomes import SweepOutcome
from cutout.use_case import UseCase

# How long past the poll limit a job may stay in flight before the sweep resolves it.
GRACE = timedelta(seconds=600)


class Sweeper(UseCase):
    def sweep(self) -> dict[str, int]:
        cutoff = self.clock() - timedelta(seconds=self.settings.poll_max_wait_seconds) - GRACE
        stuck = 0
        outcomes: dict[str, int] = {}
        for status in (JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.RENDERING):
            for job in self.store.list_by_status(status, created_before=cutoff):
                stuck += 1
                bind_job(job_id=job.job_id, source_key=job.source_key, project_id=job.project_id)
                result = self._resolve(job)
                outcomes[result] = outcomes.get(result, 0) + 1
        count("StuckJobs", stuck)
        logger.info("sweep finished", extra={"stuck": stuck, "outcomes": outcomes})
        return outcomes

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
