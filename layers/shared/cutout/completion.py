"""Results come back: the poll schedule, the finalize step, and the sweep for jobs stuck past their limit.

One code path completes a job whatever told us it was done (webhook or poll): `Finalizer.handle` takes a
completion message holding a Magic Hour project, and moves the job forward. Writing the cutout is guarded by a
lease on the record, so webhook and poll racing produce one S3 write and one event.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any
from urllib.parse import quote

import requests

from cutout import aws_clients, events_out, secrets
from cutout.config import Settings
from cutout.job_store import JobStore, previous_project_ids
from cutout.magic_hour import (
    MagicHourClient,
    MagicHourError,
    MalformedResponse,
    Project,
    ProjectNotFound,
    parse_project,
)
from cutout.models import (
    CREATE_OUTCOME_UNKNOWN,
    MAGIC_HOUR_STATUS,
    TERMINAL,
    JobStatus,
    iso,
    job_id_from_project_name,
    output_key_for,
    utc_now,
)
from cutout.observability import bind_job, count, logger

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TRAILER = b"IEND\xaeB`\x82"
DOWNLOAD_CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024  # beyond this the download spills to /tmp
FINALIZE_LEASE_SECONDS = 120
# Completion messages for a job that is not yet recorded (the webhook can beat the submit's DynamoDB write)
# are retried this many receives before being dropped as belonging to no job of ours.
UNKNOWN_JOB_RECEIVES = 4
# A broken output (not a PNG, too large) is retried with a fresh URL this many receives, then recorded.
INVALID_OUTPUT_RECEIVES = 3
# A download that keeps failing (5xx, redirect, network) is recorded on this receive: below the completion
# queue's maxReceiveCount (5), so the job ends terminal instead of in the DLQ.
DOWNLOAD_GIVE_UP_RECEIVES = 4


class RetryLater(Exception):
    """Put the message back on its queue."""


class InvalidOutput(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class CompletionMessage:
    project: dict[str, Any]
    source: str  # webhook | poll | sweeper
    event_type: str = ""
    job_id: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {"project": self.project, "source": self.source, "event_type": self.event_type, "job_id": self.job_id}
        )

    @classmethod
    def from_json(cls, body: str) -> CompletionMessage:
        doc = json.loads(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("project"), dict):
            raise ValueError("completion message without a project")
        return cls(
            project=doc["project"],
            source=str(doc.get("source", "")),
            event_type=str(doc.get("event_type", "")),
            job_id=doc.get("job_id") if isinstance(doc.get("job_id"), str) else None,
        )


def check_png(head: bytes, tail: bytes) -> None:
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise InvalidOutput("invalid_output", "the download is not a PNG")
    if not tail.endswith(PNG_TRAILER):
        raise InvalidOutput("invalid_output", "the PNG is truncated (no IEND)")


def schedule_check(settings: Settings, job_id: str, project_id: str) -> None:
    """The first bounded status check of a job (the submit after a create, the finalizer after an adoption)."""
    if not settings.poll_queue_url:
        return
    message = PollMessage(job_id, project_id, 1, iso(utc_now()))
    aws_clients.sqs().send_message(
        QueueUrl=settings.poll_queue_url,
        MessageBody=message.to_json(),
        DelaySeconds=min(settings.poll_first_delay_seconds, 900),
    )


class Completion:
    """Shared collaborators for poll, finalize and sweep."""

    def __init__(self, settings: Settings, store: JobStore | None = None) -> None:
        self.settings = settings
        self.store = store or JobStore(settings.jobs_table)
        self._client: MagicHourClient | None = None

    def magic_hour(self) -> MagicHourClient:
        if self._client is None:
            self._client = MagicHourClient(
                self.settings.magic_hour_base_url, secrets.api_key(self.settings.api_key_secret_id)
            )
        return self._client

    def enqueue_completion(self, message: CompletionMessage) -> None:
        aws_clients.sqs().send_message(QueueUrl=self.settings.completion_queue_url, MessageBody=message.to_json())

    def fail(
        self,
        job: dict[str, Any],
        status: JobStatus,
        code: str,
        message: str,
        *,
        adopting: bool = False,
        **attrs: Any,
    ) -> bool:
        """Move a job to a failed terminal state and tell the world, once.

        `adopting`: the job is an ambiguous create whose project has now reported in; its placeholder error
        gives way to what Magic Hour says happened."""
        changed = self.store.advance(
            job["job_id"],
            status,
            allow_from=frozenset({JobStatus.ERROR}) if adopting else None,
            only_if_error_code=CREATE_OUTCOME_UNKNOWN if adopting else None,
            attrs={"error_code": code, "error_message": message[:1000], **attrs},
            remove=("finalize_until", "finalize_token"),
        )
        if changed:
            count(f"Jobs_{status.value}")
            logger.warning("job failed", extra={"status": status.value, "error_code": code})
            final = self.store.get(job["job_id"]) or job
            events_out.publish(self.settings.event_bus_name, events_out.FAILED, final)
        return changed


# ---------------------------------------------------------------------------------------------------------
class Finalizer(Completion):
    def handle(self, message: CompletionMessage, receive_count: int = 1) -> str:
        project = parse_project(message.project)
        bind_job(project_id=project.id)
        job_id = message.job_id or job_id_from_project_name(project.name) or self.store.job_id_for_project(project.id)
        job = self.store.get(job_id) if job_id else None
        if job is None:
            if job_id and receive_count < UNKNOWN_JOB_RECEIVES:
                raise RetryLater("job not recorded yet")
            count("UnknownProject")
            logger.warning("completion for a project that is no job of ours; dropped")
            return "unknown_project"
        bind_job(job_id=job["job_id"], source_key=job.get("source_key"), project_id=project.id)
        if project.id in previous_project_ids(job):
            # An earlier attempt's project (the job was retried): its outcome is in the history already.
            count("PreviousAttempt")
            return "previous_attempt"
        adopting = job.get("error_code") == CREATE_OUTCOME_UNKNOWN and not job.get("project_id")
        if job.get("project_id") and job["project_id"] != project.id:
            count("ProjectMismatch")
            logger.warning("completion names another project than the job's; dropped")
            return "project_mismatch"
        if job["status"] == JobStatus.SUBMITTING and not job.get("project_id"):
            if receive_count < UNKNOWN_JOB_RECEIVES:
                raise RetryLater("submit has not recorded the project yet")
            # The submit died between the create and its record; the project name proves it is this job's.
            adopting = True
        status = MAGIC_HOUR_STATUS[project.status]
        if JobStatus(job["status"]) in TERMINAL and not adopting:
            count("DuplicateCompletion")
            return "already_final"
        if status in (JobStatus.QUEUED, JobStatus.RENDERING):
            if adopting:
                return self._adopt(job, project, status)
            self.store.advance(job["job_id"], status, expect_project_id=project.id, attrs={"project_id": project.id})
            return "progress"
        if status == JobStatus.COMPLETE:
            return self._complete(job, project, receive_count, adopting)
        refunded = project.credits_charged == 0
        code = project.error_code or ("canceled" if status == JobStatus.CANCELED else "render_error")
        text = project.error_message or ("canceled at Magic Hour" if status == JobStatus.CANCELED else "render failed")
        changed = self.fail(
            job,
            status,
            code,
            text,
            adopting=adopting,
            project_id=project.id,
            credits_charged=project.credits_charged,
            credits_refunded=refunded,
            ambiguous=True if adopting else None,
        )
        return status.value if changed else "already_final"

    def _adopt(self, job: dict[str, Any], project: Project, status: JobStatus) -> str:
        """An ambiguous create's project reported progress: record it and give it status checks, so the job
        finishes even if no further webhook arrives."""
        adopted = self.store.advance(
            job["job_id"],
            status,
            allow_from=frozenset({JobStatus.ERROR}),
            only_if_error_code=CREATE_OUTCOME_UNKNOWN,
            attrs={"project_id": project.id, "credits_charged": project.credits_charged, "ambiguous": True},
            remove=("error_code", "error_message", "expires_at", "claim_token"),
        )
        if adopted:
            count("AmbiguousAdopted")
            logger.warning("ambiguous create adopted: its project reported in")
            schedule_check(self.settings, job["job_id"], project.id)
        return "adopted" if adopted else "progress"

    def _complete(self, job: dict[str, Any], project: Project, receive_count: int, adopting: bool) -> str:
        token = uuid.uuid4().hex
        if not self.store.begin_finalize(job["job_id"], token, FINALIZE_LEASE_SECONDS, adopt_ambiguous=adopting):
            current = self.store.get(job["job_id"]) or {}
            if current.get("status") == JobStatus.COMPLETE:
                count("DuplicateCompletion")
                return "already_final"
            if JobStatus(current.get("status", "error")) in TERMINAL:
                return "already_final"
            raise RetryLater("another finalizer holds the lease")
        bucket = self.settings.output_bucket_for(job["source_bucket"])
        key = output_key_for(job["source_key"], self.settings.input_prefix, self.settings.output_prefix)
        try:
            size = self._copy_output(project, bucket, key, job)
        except InvalidOutput as exc:
            self.store.end_finalize(job["job_id"], token)
            if receive_count >= INVALID_OUTPUT_RECEIVES:
                self.fail(job, JobStatus.ERROR, exc.code, str(exc), project_id=project.id)
                return "invalid_output"
            count("InvalidOutputRetried")
            raise RetryLater(str(exc)) from None
        except RetryLater as exc:
            # 5xx, redirects, network errors: worth retrying, but not forever. Record the job as failed one
            # receive before the queue would dead-letter the message, so the job always ends terminal.
            self.store.end_finalize(job["job_id"], token)
            if receive_count >= DOWNLOAD_GIVE_UP_RECEIVES:
                self.fail(job, JobStatus.ERROR, "download_failed", str(exc), project_id=project.id)
                return "download_failed"
            raise
        except Exception:
            self.store.end_finalize(job["job_id"], token)
            raise
        now = iso(utc_now())
        attrs = {
            "project_id": project.id,
            "output_bucket": bucket,
            "output_key": key,
            "output_size": size,
            "completed_at": now,
            "credits_charged": project.credits_charged or job.get("credits_charged"),
            "ambiguous": True if adopting else None,
        }
        if not self.store.complete(job["job_id"], token, attrs):
            # Our lease expired and someone else finished; their write and ours hold the same bytes.
            return "already_final"
        count("Completed")
        latency = (utc_now() - datetime.fromisoformat(str(job["created_at"]).replace("Z", "+00:00"))).total_seconds()
        logger.info("job complete", extra={"output_key": key, "output_size": size, "latency_seconds": latency})
        final = self.store.get(job["job_id"]) or {**job, **attrs, "status": "complete"}
        events_out.publish(self.settings.event_bus_name, events_out.COMPLETED, final)
        return "complete"

    # ----- download → check → S3 --------------------------------------------------------------------
    def _copy_output(self, project: Project, bucket: str, key: str, job: dict[str, Any]) -> int:
        url = self._fresh_url(project)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            try:
                size, head, tail = self._download(url, spool)
            except _Expired:
                # Download URLs live 24 h; a fresh GET of the project returns fresh ones.
                count("DownloadUrlRefreshed")
                refreshed = self.magic_hour().get_project(project.id)
                url = self._first_url(refreshed)
                spool.seek(0)
                spool.truncate()
                try:
                    size, head, tail = self._download(url, spool)
                except _Expired as exc:
                    # Even a fresh URL is refused: retried a few receives, then recorded (never a DLQ loop).
                    raise InvalidOutput(
                        "download_unavailable", f"download refused ({exc.args[0]}) even with a fresh URL"
                    ) from None
            check_png(head, tail)
            spool.seek(0)
            aws_clients.s3().put_object(
                Bucket=bucket,
                Key=key,
                Body=spool,
                ContentLength=size,
                ContentType="image/png",
                Metadata={
                    # S3 user metadata is ASCII only; keys may be any unicode.
                    "source-key": quote(job["source_key"], safe="/"),
                    "source-bucket": job["source_bucket"],
                    "job-id": job["job_id"],
                    "project-id": project.id,
                },
            )
        return size

    def _fresh_url(self, project: Project) -> str:
        if project.downloads:
            expires = project.downloads[0].get("expires_at")
            try:
                expired = bool(expires) and datetime.fromisoformat(str(expires).replace("Z", "+00:00")) <= utc_now()
            except ValueError:
                expired = False
            if not expired:
                return str(project.downloads[0]["url"])
        # No URL in the message, or one already past its expiry: ask Magic Hour for fresh ones.
        return self._first_url(self.magic_hour().get_project(project.id))

    @staticmethod
    def _first_url(project: Project) -> str:
        if project.status != "complete" or not project.downloads:
            raise InvalidOutput("no_download", f"project is {project.status} with no download URL")
        return str(project.downloads[0]["url"])

    def _download(self, url: str, sink: IO[bytes]) -> tuple[int, bytes, bytes]:
        limit = self.settings.max_output_bytes
        try:
            # Signed storage URLs point straight at their object: redirects are refused, not followed.
            with requests.get(url, stream=True, timeout=(3.05, 30), allow_redirects=False) as resp:
                if resp.status_code in (401, 403, 404, 410):
                    raise _Expired(resp.status_code)
                if resp.status_code != 200:
                    raise RetryLater(f"download answered {resp.status_code}")
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise InvalidOutput("output_too_large", f"output of {declared} bytes exceeds {limit}")
                size, head, tail = 0, b"", b""
                for chunk in resp.iter_content(DOWNLOAD_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise InvalidOutput("output_too_large", f"output exceeds {limit} bytes")
                    if len(head) < 64:
                        head = (head + chunk)[:64]
                    tail = (tail + chunk)[-16:]
                    sink.write(chunk)
        except requests.exceptions.RequestException as exc:
            raise RetryLater(f"download failed: {type(exc).__name__}") from None
        return size, head, tail


class _Expired(Exception):
    """The download URL no longer works (expired signature, gone)."""


# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PollMessage:
    job_id: str
    project_id: str
    attempt: int
    first_check_at: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "job_id": self.job_id,
                "project_id": self.project_id,
                "attempt": self.attempt,
                "first_check_at": self.first_check_at,
            }
        )

    @classmethod
    def from_json(cls, body: str) -> PollMessage:
        doc = json.loads(body)
        return cls(
            job_id=str(doc["job_id"]),
            project_id=str(doc["project_id"]),
            attempt=int(doc.get("attempt", 1)),
            first_check_at=str(doc.get("first_check_at") or iso(utc_now())),
        )


class Poller(Completion):
    """Bounded polling: a delayed SQS message per check, never a sleep inside Lambda."""

    def delay_for(self, attempt: int) -> int:
        s = self.settings
        return int(min(max(s.poll_first_delay_seconds, 1) * (1.5 ** max(attempt - 1, 0)), s.poll_max_delay_seconds))

    def handle(self, msg: PollMessage) -> str:
        bind_job(job_id=msg.job_id, project_id=msg.project_id)
        job = self.store.get(msg.job_id)
        if job is None or JobStatus(job["status"]) in TERMINAL:
            count("PollSkipped")  # finished already (usually by the webhook): the cheap path
            return "done"
        bind_job(source_key=job.get("source_key"))
        if msg.project_id in previous_project_ids(job):
            count("PreviousAttempt")  # a check scheduled for an attempt that has since been retried
            return "previous_attempt"
        started = datetime.fromisoformat(msg.first_check_at.replace("Z", "+00:00"))
        waited = (utc_now() - started).total_seconds()
        try:
            project = self.magic_hour().get_project(msg.project_id)
        except ProjectNotFound:
            self.fail(job, JobStatus.ERROR, "project_not_found", "Magic Hour does not know this project")
            return "not_found"
        except (MalformedResponse, MagicHourError) as exc:
            count("PollErrors")
            logger.warning("status check failed", extra={"error": type(exc).__name__, "reason": str(exc)[:200]})
            return self._again_or_time_out(job, msg, waited, f"last check failed: {exc}")
        count("PollChecks")
        status = MAGIC_HOUR_STATUS[project.status]
        if status in TERMINAL:
            self.enqueue_completion(CompletionMessage(project=project.raw, source="poll", job_id=msg.job_id))
            return "completion_enqueued"
        if status == JobStatus.RENDERING:
            self.store.advance(msg.job_id, JobStatus.RENDERING, expect_project_id=msg.project_id)
        return self._again_or_time_out(job, msg, waited, f"still {project.status}")

    def _again_or_time_out(self, job: dict[str, Any], msg: PollMessage, waited: float, why: str) -> str:
        s = self.settings
        delay = self.delay_for(msg.attempt + 1)
        if msg.attempt >= s.poll_max_attempts or waited + delay > s.poll_max_wait_seconds:
            self.fail(
                job,
                JobStatus.TIMED_OUT,
                "timed_out",
                f"no result after {msg.attempt} checks over {int(waited)} s ({why})",
            )
            return "timed_out"
        nxt = PollMessage(msg.job_id, msg.project_id, msg.attempt + 1, msg.first_check_at)
        aws_clients.sqs().send_message(QueueUrl=s.poll_queue_url, MessageBody=nxt.to_json(), DelaySeconds=delay)
        return "rescheduled"


# ---------------------------------------------------------------------------------------------------------
class Sweeper(Completion):
    """Safety net for anything the queues lost track of: jobs non-terminal past the poll limit."""

    def sweep(self) -> dict[str, int]:
        limit = timedelta(seconds=self.settings.poll_max_wait_seconds + 600)
        cutoff = utc_now() - limit
        stuck = 0
        outcomes: dict[str, int] = {}
        for status in (JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.RENDERING):
            for job in self.store.list_by_status(status, created_before=cutoff):
                stuck += 1
                bind_job(job_id=job["job_id"], source_key=job.get("source_key"), project_id=job.get("project_id"))
                result = self._resolve(job)
                outcomes[result] = outcomes.get(result, 0) + 1
        count("StuckJobs", stuck)
        logger.info("sweep finished", extra={"stuck": stuck, "outcomes": outcomes})
        return outcomes

    def _resolve(self, job: dict[str, Any]) -> str:
        if job["status"] == JobStatus.SUBMITTING or not job.get("project_id"):
            self.fail(
                job,
                JobStatus.ERROR,
                CREATE_OUTCOME_UNKNOWN,
                "the submit never recorded a Magic Hour project",
                ambiguous=True,
            )
            count("AmbiguousCreates")
            return "ambiguous"
        try:
            project = self.magic_hour().get_project(str(job["project_id"]))
        except MagicHourError as exc:
            self.fail(job, JobStatus.TIMED_OUT, "timed_out", f"stuck past the limit; last check failed: {exc}")
            return "timed_out"
        if MAGIC_HOUR_STATUS[project.status] in TERMINAL:
            self.enqueue_completion(CompletionMessage(project=project.raw, source="sweeper", job_id=job["job_id"]))
            return "completion_enqueued"
        self.fail(job, JobStatus.TIMED_OUT, "timed_out", f"still {project.status} past the limit")
        return "timed_out"
