"""Finalize: one code path completes a job whatever told us it was done (webhook, poll or sweeper).

A completion message holds a Magic Hour project; the job moves forward from it. Writing the cutout is guarded by
a lease on the record, so webhook and poll racing produce one S3 write and one event.

A finished project frees its in-flight slot as soon as Magic Hour reports it (before our download): Magic Hour's
own slot is free by then. A paid result is never thrown away: a job that timed out (or was swept) while its
project was in fact still queued or rendering is completed when the result arrives (`complete_late`), marked
`late` with when it had timed out, and the "Cutout Completed" event says so.
"""

from __future__ import annotations

import tempfile
import uuid
from urllib.parse import quote

from cutout.aws import aws_clients
from cutout.domain.errors import InvalidOutput, RetryLater, UrlExpired
from cutout.domain.job import Job, parse_time
from cutout.domain.messages import (
    DOWNLOAD_GIVE_UP_RECEIVES,
    INVALID_OUTPUT_RECEIVES,
    UNKNOWN_JOB_RECEIVES,
    CompletionMessage,
)
from cutout.domain.models import MAGIC_HOUR_STATUS, JobStatus, iso, job_id_from_project_name, output_key_for
from cutout.domain.outcomes import FinalizeOutcome
from cutout.magic_hour.client import Project, parse_project
from cutout.magic_hour.download import download
from cutout.runtime.observability import bind_job, count, logger
from cutout.use_cases.collaborators import Collaborators, JobEnding

SPOOL_IN_MEMORY = 8 * 1024 * 1024  # beyond this the download spills to /tmp
FINALIZE_LEASE_SECONDS = 120


class Finalizer:
    def __init__(self, common: Collaborators, ending: JobEnding) -> None:
        self.settings, self.clock, self.store = common.settings, common.clock, common.store
        self.magic_hour, self.dispatch = common.magic_hour, common.dispatch
        self.slots, self.terminal = ending.slots, ending.terminal

    def handle(self, message: CompletionMessage, receive_count: int = 1) -> FinalizeOutcome:
        project = parse_project(message.project)
        bind_job(project_id=project.id)
        if message.job_id and project.status == "complete":
            done, job = self._complete_at_once(message.job_id, project, receive_count, message.source)
            if done is not None:
                return done
        else:
            job = self._job_for(message, project, receive_count)
        return self._decide(job, project, receive_count)

    def _complete_at_once(
        self, job_id: str, project: Project, receive_count: int, source: str
    ) -> tuple[FinalizeOutcome | None, Job | None]:
        """The usual completion, a job in progress with this very project recorded: one write takes the lease and
        answers the job (reading it first, then taking the lease, was two calls per image for the same decision).
        Refused, the write answers the job as it stands (None: no record), for `_decide` to tell apart as ever."""
        token = uuid.uuid4().hex
        leased, current = self.store.begin_expected(job_id, token, FINALIZE_LEASE_SECONDS, project.id)
        if leased is None:
            if current is None and receive_count < UNKNOWN_JOB_RECEIVES:
                raise RetryLater("job not recorded yet")
            return None, current
        bind_job(job_id=leased.job_id, source_key=leased.source_key, project_id=project.id)
        # Magic Hour has finished the project, so its plan slot is free: so is ours, before the download. A poll's
        # completion is sent only after the poll's own release went through (poll.py): a second delete would only
        # be refused.
        if source != "poll":
            self.slots.finished(leased.job_id, leased.slot, succeeded=True, why="finished")
        return self._write_output(leased, project, token, receive_count, adopting=False, late=False), leased

    # One return per outcome of FinalizeOutcome, each after the check that decides it: the table of what a
    # completion can be, in the order they are told apart.
    def _decide(self, job: Job | None, project: Project, receive_count: int) -> FinalizeOutcome:  # noqa: PLR0911
        if job is None:
            count("UnknownProject")
            logger.warning("completion for a project that is no job of ours; dropped")
            return FinalizeOutcome.UNKNOWN_PROJECT
        bind_job(job_id=job.job_id, source_key=job.source_key, project_id=project.id)
        if project.id in job.previous_project_ids:
            # An earlier attempt's project (the job was retried): its outcome is in the history already.
            count("PreviousAttempt")
            return FinalizeOutcome.PREVIOUS_ATTEMPT
        if job.project_id and job.project_id != project.id:
            count("ProjectMismatch")
            logger.warning("completion names another project than the job's; dropped")
            return FinalizeOutcome.PROJECT_MISMATCH
        status = MAGIC_HOUR_STATUS[project.status]
        holds_slot = not job.is_terminal or job.is_unadopted_ambiguous  # ended jobs gave theirs back already
        if holds_slot and status not in (JobStatus.QUEUED, JobStatus.RENDERING):
            # Magic Hour has finished the project, so its plan slot is free: so is ours (once, whoever reports it),
            # before anything else is decided: a claim whose record is still awaited (below) would otherwise keep
            # the slot idle for several receives.
            self.slots.finished(job.job_id, job.slot, succeeded=status == JobStatus.COMPLETE, why="finished")
        adopting = job.is_unadopted_ambiguous or self._orphaned_claim(job, receive_count)
        late = job.status == JobStatus.TIMED_OUT and status == JobStatus.COMPLETE
        if job.is_terminal and not adopting and not late:
            count("DuplicateCompletion")
            return FinalizeOutcome.ALREADY_FINAL
        if status in (JobStatus.QUEUED, JobStatus.RENDERING):
            return self._progress(job, project, status, adopting)
        if status == JobStatus.COMPLETE:
            return self._complete(job, project, receive_count, adopting, late=late)
        return self._failed(job, project, status, adopting)

    def _job_for(self, message: CompletionMessage, project: Project, receive_count: int) -> Job | None:
        job_id = message.job_id or job_id_from_project_name(project.name) or self.store.job_id_for_project(project.id)
        job = self.store.get(job_id) if job_id else None
        if job is None and job_id and receive_count < UNKNOWN_JOB_RECEIVES:
            raise RetryLater("job not recorded yet")
        return job

    @staticmethod
    def _orphaned_claim(job: Job, receive_count: int) -> bool:
        """A claim with no project recorded: wait for the submit to record it; after that, the submit died between
        the create and its record, and the project name proves the project is this job's (adopt it)."""
        if job.status != JobStatus.SUBMITTING or job.project_id:
            return False
        if receive_count < UNKNOWN_JOB_RECEIVES:
            raise RetryLater("submit has not recorded the project yet")
        return True

    def _progress(self, job: Job, project: Project, status: JobStatus, adopting: bool) -> FinalizeOutcome:
        if not adopting:
            self.store.mark_progress(job.job_id, status, project.id)
            return FinalizeOutcome.PROGRESS
        # An ambiguous create's project reported progress: record it and give it status checks, so the job
        # finishes even if no further webhook arrives.
        if not self.store.adopt_ambiguous(job.job_id, status, project.id, project.credits_charged):
            return FinalizeOutcome.PROGRESS
        count("AmbiguousAdopted")
        logger.warning("ambiguous create adopted: its project reported in")
        self.dispatch.first_check(job.job_id, project.id)
        return FinalizeOutcome.ADOPTED

    def _failed(self, job: Job, project: Project, status: JobStatus, adopting: bool) -> FinalizeOutcome:
        canceled = status == JobStatus.CANCELED
        changed = self.terminal.fail(
            job,
            status,
            project.error_code or ("canceled" if canceled else "render_error"),
            project.error_message or ("canceled at Magic Hour" if canceled else "render failed"),
            adopting=adopting,
            project_id=project.id,
            credits_charged=project.credits_charged,
            credits_refunded=project.credits_charged == 0,
            ambiguous=True if adopting else None,
        )
        return FinalizeOutcome(status.value) if changed else FinalizeOutcome.ALREADY_FINAL

    # ----- complete: lease → download → check → S3 → record → event ------------------------------------
    def _complete(
        self, job: Job, project: Project, receive_count: int, adopting: bool, *, late: bool = False
    ) -> FinalizeOutcome:
        token = uuid.uuid4().hex
        if not self.store.begin_finalize(
            job.job_id, token, FINALIZE_LEASE_SECONDS, adopt_ambiguous=adopting, late=late
        ):
            current = self.store.get(job.job_id)
            if current is not None and current.status == JobStatus.COMPLETE:
                count("DuplicateCompletion")
                return FinalizeOutcome.ALREADY_FINAL
            if current is None or (current.is_terminal and not (late and current.status == JobStatus.TIMED_OUT)):
                return FinalizeOutcome.ALREADY_FINAL
            return self._lease_held()
        return self._write_output(job, project, token, receive_count, adopting=adopting, late=late)

    def _write_output(
        self, job: Job, project: Project, token: str, receive_count: int, *, adopting: bool, late: bool
    ) -> FinalizeOutcome:
        """Under the lease `token`: download → check → S3 → record complete → event."""
        bucket = self.settings.output_bucket_for(job.source_bucket)
        key = output_key_for(job.source_key, self.settings.input_prefix, self.settings.output_prefix)
        try:
            size = self._copy_output(project, bucket, key, job)
        except (InvalidOutput, RetryLater) as exc:
            self.store.end_finalize(job.job_id, token)
            return self._copy_failed(job, project, exc, receive_count)
        except Exception:
            self.store.end_finalize(job.job_id, token)
            raise
        attrs = {
            "project_id": project.id,
            "output_bucket": bucket,
            "output_key": key,
            "output_size": size,
            "completed_at": iso(self.clock()),
            "credits_charged": project.credits_charged or job.credits_charged,
            "ambiguous": True if adopting else None,
        }
        if late:
            # complete_late: timed_out → complete. The record and the event say when it had been given up.
            attrs["late"] = True
            attrs["late_after_timeout_at"] = job.reached.get(JobStatus.TIMED_OUT) or job.updated_at
        completed = self.store.complete(job.job_id, token, attrs)
        if completed is None:
            # Our lease expired and someone else finished; their write and ours hold the same bytes.
            return FinalizeOutcome.ALREADY_FINAL
        count("Completed")
        if late:
            count("CompletedLate")
            logger.warning("a timed-out job's result arrived late; completed")
        latency = (self.clock() - job.created).total_seconds()
        logger.info("job complete", extra={"output_key": key, "output_size": size, "latency_seconds": latency})
        self.terminal.completed(completed)
        return FinalizeOutcome.COMPLETE

    @staticmethod
    def _lease_held() -> FinalizeOutcome:
        """Another finalizer holds this job's lease (a duplicate completion: the webhook's and a poll's, say): the job
        is left to it. Its own message covers every way it can fail: a failed copy gives the lease back and returns
        its message to the queue; a holder that dies has its message come back after the visibility timeout, by
        when its lease (FINALIZE_LEASE_SECONDS) has ended; and the sweeper re-checks any job still in flight. Sent
        back instead, this copy only waited out a visibility timeout (366 s) to find the job final, holding the
        queue from draining, and spent a receive towards the DLQ."""
        count("CompletionLeftToHolder")
        logger.info("another finalizer holds the lease; this duplicate completion is left to it")
        return FinalizeOutcome.LEFT_TO_HOLDER

    def _copy_failed(
        self, job: Job, project: Project, exc: InvalidOutput | RetryLater, receive_count: int
    ) -> FinalizeOutcome:
        """A broken output is retried with a fresh URL a few receives; a failing download (5xx, redirect, network)
        until one receive before the queue would dead-letter the message. Then the job is recorded as failed, so
        it always ends terminal."""
        if isinstance(exc, InvalidOutput):
            if receive_count < INVALID_OUTPUT_RECEIVES:
                count("InvalidOutputRetried")
                raise RetryLater(str(exc)) from None
            self.terminal.fail(job, JobStatus.ERROR, exc.code, str(exc), project_id=project.id)
            return FinalizeOutcome.INVALID_OUTPUT
        if receive_count < DOWNLOAD_GIVE_UP_RECEIVES:
            raise exc
        self.terminal.fail(job, JobStatus.ERROR, "download_failed", str(exc), project_id=project.id)
        return FinalizeOutcome.DOWNLOAD_FAILED

    def _copy_output(self, project: Project, bucket: str, key: str, job: Job) -> int:
        limit = self.settings.max_output_bytes
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            try:
                size = download(self._fresh_url(project), spool, limit)
            except UrlExpired:
                # Download URLs live 24 h; a fresh GET of the project returns fresh ones.
                count("DownloadUrlRefreshed")
                spool.seek(0)
                spool.truncate()
                try:
                    size = download(_first_url(self.magic_hour().get_project(project.id)), spool, limit)
                except UrlExpired as exc:
                    # Even a fresh URL is refused: retried a few receives, then recorded (never a DLQ loop).
                    raise InvalidOutput(
                        "download_unavailable", f"download refused ({exc.args[0]}) even with a fresh URL"
                    ) from None
            spool.seek(0)
            aws_clients.s3().put_object(
                Bucket=bucket,
                Key=key,
                Body=spool,
                ContentLength=size,
                ContentType="image/png",
                Metadata={
                    # S3 user metadata is ASCII only; keys may be any unicode.
                    "source-key": quote(job.source_key, safe="/"),
                    "source-bucket": job.source_bucket,
                    "job-id": job.job_id,
                    "project-id": project.id,
                },
            )
        return size

    def _fresh_url(self, project: Project) -> str:
        if project.downloads:
            expires = project.downloads[0].get("expires_at")
            try:
                expired = bool(expires) and parse_time(str(expires)) <= self.clock()
            except ValueError:
                expired = False
            if not expired:
                return str(project.downloads[0]["url"])
        # No URL in the message, or one already past its expiry: ask Magic Hour for fresh ones.
        return _first_url(self.magic_hour().get_project(project.id))


def _first_url(project: Project) -> str:
    if project.status != "complete" or not project.downloads:
        raise InvalidOutput("no_download", f"project is {project.status} with no download URL")
    return str(project.downloads[0]["url"])
