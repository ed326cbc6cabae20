"""Bounded polling: one delayed SQS message per status check, never a sleep inside Lambda (the fallback when a
webhook is missed). A finished project goes to the finalizer; a job past its limits ends timed_out.

The bounds (`PollMaxAttempts`, `PollMaxWaitSeconds`) count from when Magic Hour reports the project `rendering`,
not from the create: behind Magic Hour's queue a healthy job looks late. Time spent `queued` there has its own,
generous bound (QUEUED_BOUND_FACTOR times those). A job that times out anyway is still completed if its result
arrives later (finalize.py, `complete_late`)."""

from __future__ import annotations

from cutout.domain.errors import MagicHourError, MalformedResponse, ProjectNotFound
from cutout.domain.job import Job, parse_time
from cutout.domain.messages import CompletionMessage, PollMessage
from cutout.domain.models import MAGIC_HOUR_STATUS, TERMINAL, JobStatus, iso
from cutout.domain.outcomes import PollOutcome
from cutout.runtime import time_budget
from cutout.runtime.config import Settings
from cutout.runtime.observability import bind_job, count, logger
from cutout.use_cases.collaborators import Collaborators, JobEnding

# Time (and checks) allowed in Magic Hour's queue, as a multiple of the rendering bounds. Our own admission keeps
# that queue at most MaxJobsInFlight deep, so this is reached only when the plan's limit is set too high.
QUEUED_BOUND_FACTOR = 4
# After the first check (PollFirstDelaySeconds, by default Magic Hour's published p50, 4 s, queueing included), a
# render is most likely to end within the next second or two: check at SHORT_CHECK_SECONDS intervals that many
# times before backing off (x1.5 from the first delay). A render just past the first check was otherwise seen
# finished only at the next back-off step (first delay x 1.5: 2 s later on average for a 4-5 s render).
SHORT_CHECKS = 2
SHORT_CHECK_SECONDS = 1


def check_delay(s: Settings, attempt: int) -> int:
    """The delay before status check number `attempt` (the first is scheduled by whoever started the job)."""
    if 1 < attempt <= 1 + SHORT_CHECKS:
        return min(SHORT_CHECK_SECONDS, s.poll_max_delay_seconds)
    backoff = max(attempt - 1 - SHORT_CHECKS, 0)
    return int(min(max(s.poll_first_delay_seconds, 1) * (1.5**backoff), s.poll_max_delay_seconds))


class Poller:
    def __init__(self, common: Collaborators, ending: JobEnding) -> None:
        self.settings, self.clock, self.store = common.settings, common.clock, common.store
        self.magic_hour, self.dispatch = common.magic_hour, common.dispatch
        self.slots, self.terminal = ending.slots, ending.terminal

    def parse(self, body: str) -> PollMessage:
        return PollMessage.from_json(body, now=iso(self.clock()))

    def delay_for(self, attempt: int) -> int:
        return check_delay(self.settings, attempt)

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
        if msg.rendering_since is None and job.rendering_since is not None:
            # The webhook's image.started recorded it in place: the bounds count from then.
            msg = msg.rendering(iso(job.rendering_since))
        time_budget.require(self.magic_hour.worst_case_seconds)  # else deferred, the message re-sent (sqs_batch.py)
        try:
            project = self.magic_hour().get_project(msg.project_id)
        except ProjectNotFound:
            self.terminal.fail(job, JobStatus.ERROR, "project_not_found", "Magic Hour does not know this project")
            return PollOutcome.NOT_FOUND
        except (MalformedResponse, MagicHourError) as exc:
            count("PollErrors")
            logger.warning("status check failed", extra={"error": type(exc).__name__, "reason": str(exc)[:200]})
            return self._again_or_time_out(job, msg, f"last check failed: {exc}", queued=False)
        count("PollChecks")
        status = MAGIC_HOUR_STATUS[project.status]
        if status in TERMINAL:
            # Magic Hour's plan slot is free now: so is ours, without waiting for the completion's own hop. The
            # completion is sent only once this release went through: the finalizer relies on it and makes none.
            self.slots.finished(msg.job_id, job.slot, succeeded=status == JobStatus.COMPLETE, why="finished")
            self.dispatch.completion(CompletionMessage(project=project.raw, source="poll", job_id=msg.job_id))
            return PollOutcome.COMPLETION_ENQUEUED
        if status == JobStatus.RENDERING:
            self.store.mark_progress(msg.job_id, JobStatus.RENDERING, msg.project_id)
            msg = msg.rendering(iso(self.clock()))
        return self._again_or_time_out(job, msg, f"still {project.status}", queued=status == JobStatus.QUEUED)

    def _again_or_time_out(self, job: Job, msg: PollMessage, why: str, *, queued: bool) -> PollOutcome:
        """Rendering (or unknown: the check failed) counts from when rendering began, else from the first check;
        a project Magic Hour reports still queued gets QUEUED_BOUND_FACTOR times the bounds."""
        s = self.settings
        delay = self.delay_for(msg.attempt + 1)
        now = self.clock()
        max_checks, max_wait = s.poll_max_attempts, s.poll_max_wait_seconds
        if msg.rendering_since is not None:
            waited = (now - parse_time(msg.rendering_since)).total_seconds()
            checks = msg.attempt - (msg.rendering_attempt or msg.attempt) + 1
            phase = "rendering"
        else:
            waited = (now - parse_time(msg.first_check_at)).total_seconds()
            checks = msg.attempt
            phase = "queued at Magic Hour" if queued else "since the first check"
            if queued:
                max_checks, max_wait = max_checks * QUEUED_BOUND_FACTOR, max_wait * QUEUED_BOUND_FACTOR
        if checks >= max_checks or waited + delay > max_wait:
            self.terminal.fail(
                job,
                JobStatus.TIMED_OUT,
                "timed_out",
                f"no result after {checks} checks over {int(waited)} s {phase} ({why})",
            )
            return PollOutcome.TIMED_OUT
        self.dispatch.next_check(msg.next(), delay)
        return PollOutcome.RESCHEDULED
