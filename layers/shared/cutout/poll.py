"""Bounded polling: one delayed SQS message per status check, never a sleep inside Lambda (the fallback when a
webhook is missed). A finished project goes to the finalizer; a job past its limits ends timed_out."""

from __future__ import annotations

from cutout.errors import MagicHourError, MalformedResponse, ProjectNotFound
from cutout.job import Job, parse_time
from cutout.messages import CompletionMessage, PollMessage
from cutout.models import MAGIC_HOUR_STATUS, TERMINAL, JobStatus, iso
from cutout.observability import bind_job, count, logger
from cutout.outcomes import PollOutcome
from cutout.use_case import UseCase


class Poller(UseCase):
    def parse(self, body: str) -> PollMessage:
        return PollMessage.from_json(body, now=iso(self.clock()))

    def delay_for(self, attempt: int) -> int:
        s = self.settings
        return int(min(max(s.poll_first_delay_seconds, 1) * (1.5 ** max(attempt - 1, 0)), s.poll_max_delay_seconds))

    def handle(self, msg: PollMessage) -> PollOutcome:
        bind_job(job_id=msg.job_id, project_id=msg.project_id)
        job = self.store.get(msg.job_id)
        if job is None or job.is_terminal:
            count("PollSkipped")  # finished already (usually by the webhook): the cheap path
            return PollOutcome.DONE
        bind_job(source_key=job.source_key)
        if msg.project_id in job.previous_project_ids:
            count("PreviousAttempt")  # a check scheduled for an attempt that has since been retried
            return PollOutcome.PREVIOUS_ATTEMPT
        waited = (self.clock() - parse_time(msg.first_check_at)).total_seconds()
        try:
            project = self.magic_hour().get_project(msg.project_id)
        except ProjectNotFound:
            self.terminal.fail(job, JobStatus.ERROR, "project_not_found", "Magic Hour does not know this project")
            return PollOutcome.NOT_FOUND
        except (MalformedResponse, MagicHourError) as exc:
            count("PollErrors")
            logger.warning("status check failed", extra={"error": type(exc).__name__, "reason": str(exc)[:200]})
            return self._again_or_time_out(job, msg, waited, f"last check failed: {exc}")
        count("PollChecks")
        status = MAGIC_HOUR_STATUS[project.status]
        if status in TERMINAL:
            self.dispatch.completion(CompletionMessage(project=project.raw, source="poll", job_id=msg.job_id))
            return PollOutcome.COMPLETION_ENQUEUED
        if status == JobStatus.RENDERING:
            self.store.mark_progress(msg.job_id, JobStatus.RENDERING, msg.project_id)
        return self._again_or_time_out(job, msg, waited, f"still {project.status}")

    def _again_or_time_out(self, job: Job, msg: PollMessage, waited: float, why: str) -> PollOutcome:
        s = self.settings
        delay = self.delay_for(msg.attempt + 1)
        if msg.attempt >= s.poll_max_attempts or waited + delay > s.poll_max_wait_seconds:
            self.terminal.fail(
                job,
                JobStatus.TIMED_OUT,
                "timed_out",
                f"no result after {msg.attempt} checks over {int(waited)} s ({why})",
            )
            return PollOutcome.TIMED_OUT
        self.dispatch.next_check(msg.next(), delay)
        return PollOutcome.RESCHEDULED
