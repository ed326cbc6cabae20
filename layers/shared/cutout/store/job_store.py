"""Data access for the jobs table (DynamoDB): the job state machine, one named transition per legal move.

    transition            from                                    to                            guard (besides `from`)
    --------------------  --------------------------------------  ----------------------------  ----------------------
    wait                  (absent) | retry_pending                waiting                       nothing spent (no slot)
    claim                 (absent)                                submitting                    licence to create
    dispatch              waiting                                 submitting                    a slot taken; licence
    back_to_waiting       submitting                              waiting                       our claim token
    release_claim         submitting                              (deleted)                     our claim token
    reject                (absent)                                rejected                      nothing spent yet
    reject_by_magic_hour  submitting                              rejected                      our claim token
    mark_queued           submitting                              queued                        our claim token
      ... or else         ambiguous error (a stale claim)         queued                        -
    mark_progress         forward                                 queued | rendering            the job's own project
    mark_ambiguous        forward                                 error (create unknown)        -
    adopt_ambiguous       forward, or ambiguous error             queued | rendering            -
    fail                  forward (+ ambiguous error: adopting)   error | canceled | timed_out  -
    -- the finalize lease (job_lease.py) --
    begin_finalize        in flight (+ ambiguous error)           (unchanged)                   no fresh finalize lease
      ... late=True       timed_out (a late result)               (unchanged)                   no fresh finalize lease
    end_finalize          any                                     (unchanged)                   our finalize lease
    complete              any                                     complete                      our finalize lease
    -- operator retry (`cutout retry`) --
    reopen_for_retry      error | timed_out | canceled            retry_pending                 as read; not ambiguous*
      ... or              rejected by configuration (models)      retry_pending                 as read
    claim                 retry_pending                           submitting                    keeps attempts/history
    release_claim         submitting (retried: has `attempts`)    retry_pending                 our claim token
    reject                retry_pending                           rejected                      nothing spent yet
    (* unless allow_ambiguous: an ambiguous create may be paid already)

"Forward" means a lower rank (models.RANK): duplicate or late messages change nothing. `reopen_for_retry` is the
one backward move, by an operator; `retry_pending` ranks with the terminal states, so only the claim leaves it.
Every move is ONE conditional write (`JobWriter.write`); a refused condition answers False (nobody raises on a lost
race). A status change stamps `updated_at`, `<status>_at` the first time the status is reached (the job's history),
and `expires_at` (TTL) when terminal. To add a state: a JobStatus + its RANK; to add a move: a method here calling
`self._writer.write` with its `from` set and guard, and a row above.
Where they live: every row is a method of `JobStore` here, except the three of the finalize lease (job_lease.py);
the reads (get, by project, by status) are in job_queries.py and the write itself in job_write.py. `JobStore`
holds one of each, built in its constructor, and answers for all of them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from cutout.domain.job import Claim, Job, Reopened, SourceObject, reached_attribute
from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, Clock, JobStatus, forward_to, is_retryable, iso, utc_now
from cutout.store.dynamo_expressions import Expression
from cutout.store.job_lease import FinalizeLease
from cutout.store.job_queries import BY_PROJECT_INDEX, BY_STATUS_INDEX, JobQueries
from cutout.store.job_write import LEASE, MESSAGE_LIMIT, UPLOAD_TIME, JobWriter, error_attrs, source_record

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from cutout.domain.rendition import Rendition

# A retry keeps these of the outcome it replaces (one `history` entry, with started_at/ended_at) ...
HISTORY_FIELDS = (
    "status",
    "error_code",
    "error_message",
    "project_id",
    "credits_charged",
    "credits_refunded",
    "ambiguous",
)
# ... and clears these (plus the per-attempt `<status>_at` stamps) for the next attempt.
OUTCOME_FIELDS = (*HISTORY_FIELDS[1:], "expires_at", "submitted_at", "claimed_at", "claim_token", *LEASE)


class JobStore:
    """The job state machine: one method per row of the table above."""

    def __init__(self, table: str, client: DynamoDBClient | None = None, *, clock: Clock = utc_now) -> None:
        self.table = table
        self.clock = clock
        self.queries = JobQueries(table, client, clock=clock)
        self._writer = JobWriter(self.queries)
        self.lease = FinalizeLease(self._writer)
        # What the store answers for its parts: the reads and the finalize lease's three rows.
        self.get = self.queries.get
        self.job_id_for_project = self.queries.job_id_for_project
        self.list_by_status = self.queries.list_by_status
        self.begin_finalize = self.lease.begin_finalize
        self.begin_expected = self.lease.begin_expected
        self.end_finalize = self.lease.end_finalize
        self.complete = self.lease.complete

    @property
    def client(self) -> DynamoDBClient:
        return self.queries.client

    # ----- the submit path -------------------------------------------------------------------------
    def claim(
        self, job_id: str, source: SourceObject, *, slot: str | None = None, slot_put: dict[str, Any] | None = None
    ) -> Claim:
        """Insert the `submitting` record unless one exists. Winning the claim is the only licence to create.
        `slot`: the in-flight slot taken for it (admission.py), recorded so whoever ends the job releases it;
        `slot_put`: the slot's own conditional put, made in the same transaction (both or neither, one call):
        job_write.AlongsideRefused when the slot was taken meanwhile.

        A job an operator reopened (`retry_pending`) is claimable through this same write, so a retry racing a
        redelivered upload still creates once; its `attempts` and `history` stay (an update, not a put), and so
        does `created_at`, the upload's time (this attempt's start is `attempt_started_at`, set by the reopen)."""
        token = uuid.uuid4().hex
        now = iso(self.clock())
        record = {**source_record(source, now), "claimed_at": now, "claim_token": token, "slot": slot}
        return self._insert_upload(job_id, JobStatus.SUBMITTING, record, token, alongside=slot_put)

    def wait(self, job_id: str, source: SourceObject) -> Claim:
        """Insert the `waiting` record unless one exists: no slot is free, the upload waits, visibly and for free.
        (Nothing is presigned yet: the URL is made when the job is dispatched.) A reopened job (`retry_pending`)
        waits through this same write, keeping its `attempts` and `history`, as `claim` does."""
        record = {**source_record(source, iso(self.clock())), "slot": None, "claim_token": None}
        return self._insert_upload(job_id, JobStatus.WAITING, record, "", None)

    def _insert_upload(
        self, job_id: str, status: JobStatus, record: dict[str, Any], token: str, alongside: dict[str, Any] | None
    ) -> Claim:
        """The one write that starts a job (`claim`, `wait`): insert, or take over a reopened one. Lost, it answers
        the record that stands in the way, as DynamoDB returns it with the refusal."""
        unset = tuple(k for k, v in record.items() if v is None)  # a retry's stale source attributes go
        standing: list[dict[str, Any] | None] = []
        if self._writer.write(
            job_id,
            status,
            insert=True,
            from_={JobStatus.RETRY_PENDING},
            set_=record,
            remove=unset,
            keep=UPLOAD_TIME,
            refused=standing.append,
            alongside=alongside,
        ):
            return Claim(won=True, token=token, existing=None)
        # A transaction's refusal may come without the item (ReturnValuesOnConditionCheckFailure is per item and
        # optional there): read it then.
        existing = Job.from_item(standing[0]) if standing and standing[0] else None
        return Claim(won=False, token=token, existing=existing or self.get(job_id))

    def dispatch(self, job_id: str, slot: str) -> str | None:
        """waiting → submitting with `slot`: the licence to create, like a claim. Returns the claim token, or None
        when another dispatcher (or a duplicate delivery) took this job first."""
        token = uuid.uuid4().hex
        now = iso(self.clock())
        taken = self._writer.write(
            job_id,
            JobStatus.SUBMITTING,
            from_={JobStatus.WAITING},
            set_={"claimed_at": now, "claim_token": token, "slot": slot},
        )
        return token if taken else None

    def back_to_waiting(self, job_id: str, token: str, reason: str) -> bool:
        """A create that provably did not happen (Magic Hour's 429 at its plan limit, a 502/503): the job waits
        again instead of failing its message, and gives up its slot (the caller releases it)."""
        return self._writer.write(
            job_id,
            JobStatus.WAITING,
            from_={JobStatus.SUBMITTING},
            guard={"claim_token": token},
            set_={"waiting_reason": reason[:MESSAGE_LIMIT]},
            remove=("claim_token", "claimed_at", "slot"),
        )

    def release_claim(self, job_id: str, token: str) -> None:
        """Delete our own claim after a create that provably did not happen, so a retry may claim again.
        A retried job (it has `attempts`) goes back to `retry_pending` instead: its history stays."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.delete_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                ConditionExpression="claim_token = :t AND #s = :submitting AND attribute_not_exists(attempts)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":t": {"S": token},
                    ":submitting": {"S": JobStatus.SUBMITTING.value},
                },
            )
            return
        expr = Expression()
        self._writer.write(
            job_id,
            JobStatus.RETRY_PENDING,
            from_={JobStatus.SUBMITTING},
            guard={"claim_token": token},
            condition=f"attribute_exists({expr.name('attempts')})",
            expr=expr,
            remove=("claim_token", "claimed_at"),
        )

    def reject(self, job_id: str, source: SourceObject, code: str, message: str) -> bool:
        """Record an upload refused before any money was spent. A record that already exists is left alone,
        except a reopened job (`retry_pending`): its retry is refused in place, history kept."""
        record = {**source_record(source, iso(self.clock())), **error_attrs(code, message)}
        return self._writer.write(
            job_id, JobStatus.REJECTED, insert=True, from_={JobStatus.RETRY_PENDING}, set_=record, keep=UPLOAD_TIME
        )

    def reject_by_magic_hour(self, job_id: str, token: str, code: str, message: str) -> bool:
        """Magic Hour refused our create (400/422): nothing was created, the job ends rejected."""
        return self._writer.write(
            job_id,
            JobStatus.REJECTED,
            from_={JobStatus.SUBMITTING},
            guard={"claim_token": token},
            set_=error_attrs(code, message),
            remove=("claim_token",),
        )

    def mark_queued(self, job_id: str, token: str, project_id: str, credits_charged: int) -> bool:
        """Record the create: submitting → queued, only by the claim's owner. If the claim was meanwhile resolved
        as an ambiguous create (a stale claim), adopt the project so the webhook or a poll can still finish it."""
        now = iso(self.clock())
        recorded = self._writer.write(
            job_id,
            JobStatus.QUEUED,
            from_={JobStatus.SUBMITTING},
            guard={"claim_token": token},
            set_={"project_id": project_id, "credits_charged": credits_charged, "submitted_at": now},
            remove=("claim_token",),
        )
        # Another token on a `submitting` record is not ours to move: only the ambiguous placeholder is adopted.
        return recorded or self._adopt(job_id, JobStatus.QUEUED, project_id, credits_charged, from_={JobStatus.ERROR})

    def mark_ambiguous(self, job_id: str, why: str, *, stale_claim: str | None = None) -> bool:
        """The create may have happened and cannot be repeated (no idempotency key): a placeholder error that
        the project, should it report in, resolves (`adopt_ambiguous`, `fail(adopting=True)`). `stale_claim`: only
        while the job is still `submitting` under that claim token (a worker that recorded its project meanwhile
        keeps its job)."""
        return self._writer.write(
            job_id,
            JobStatus.ERROR,
            from_={JobStatus.SUBMITTING} if stale_claim else forward_to(JobStatus.ERROR),
            guard={"claim_token": stale_claim} if stale_claim else None,
            set_={**error_attrs(CREATE_OUTCOME_UNKNOWN, why), "ambiguous": True},
            remove=("claim_token",),
        )

    # ----- progress reported by Magic Hour ----------------------------------------------------------
    def mark_progress(self, job_id: str, status: JobStatus, project_id: str, *, require_project: bool = False) -> bool:
        """queued/rendering, forward only, for the job's own project (`require_project`: it must be recorded)."""
        if status not in (JobStatus.QUEUED, JobStatus.RENDERING):
            raise ValueError(f"progress is queued or rendering, not {status}")
        return self._writer.write(
            job_id,
            status,
            from_=forward_to(status),
            project=(project_id, require_project),
            set_={"project_id": project_id},
        )

    def adopt_ambiguous(self, job_id: str, status: JobStatus, project_id: str, credits_charged: int | None) -> bool:
        """An ambiguous create's project reported in: the job is that project's, in progress again."""
        return self._adopt(job_id, status, project_id, credits_charged, from_=forward_to(status) | {JobStatus.ERROR})

    def _adopt(
        self,
        job_id: str,
        status: JobStatus,
        project_id: str,
        credits_charged: int | None,
        *,
        from_: Collection[JobStatus],
    ) -> bool:
        return self._writer.write(
            job_id,
            status,
            from_=from_,
            error_code_if_error=CREATE_OUTCOME_UNKNOWN,
            set_={"project_id": project_id, "credits_charged": credits_charged, "ambiguous": True},
            remove=("error_code", "error_message", "expires_at", "claim_token"),
        )

    def fail(
        self,
        job_id: str,
        status: JobStatus,
        code: str,
        message: str,
        *,
        adopting: bool = False,
        **attrs: Any,
    ) -> Job | None:
        """error / canceled / timed_out with a code and message: the failed record, or None when it did not move.
        `adopting`: the job is an ambiguous create whose project has reported in; its placeholder error gives way
        to what Magic Hour says happened."""
        if status not in (JobStatus.ERROR, JobStatus.CANCELED, JobStatus.TIMED_OUT):
            raise ValueError(f"a failure ends error, canceled or timed_out, not {status}")
        item = self._writer.write_returning(
            job_id,
            status,
            from_=forward_to(status) | ({JobStatus.ERROR} if adopting else set()),
            error_code_if_error=CREATE_OUTCOME_UNKNOWN if adopting else None,
            set_={**error_attrs(code, message), **attrs},
            remove=LEASE,
        )
        return Job.from_item(item) if item else None

    # ----- the renditions step: its own attributes on a complete job, never a status change --------------
    def record_renditions(self, job_id: str, renditions: Mapping[str, Rendition], **run: Any) -> bool:
        """job_renditions.py; imported here, by the one function that records renditions, so the paid path's
        cold start does not load it."""
        from cutout.store.job_renditions import JobRenditions

        return JobRenditions(self.queries).record(job_id, renditions, **run)

    # ----- operator retry: the one backward move, explicit and conditional -------------------------------
    def reopen_for_retry(self, job_id: str, *, allow_ambiguous: bool = False) -> Reopened:
        """A failed job (`RETRYABLE`), or one rejected for its configuration rather than its file
        (`CONFIGURATION_REJECTIONS`), → `retry_pending`, keeping the record: its outcome is appended to `history`,
        `attempts` counts submit attempts (a first attempt has none: 1), the outcome fields are removed. The
        submit's claim takes it from there. Conditional on status and `updated_at` as read, so the history entry
        is exactly what it replaces. An ambiguous create may already be paid: only with `allow_ambiguous`.
        `created_at` stays the upload's; `attempt_started_at` (now) is when the next attempt started."""
        job = self.get(job_id)
        if job is None:
            return Reopened(False, "not_found", None)
        if not is_retryable(job.status, job.error_code):
            terminal_or_pending = job.is_terminal or job.status == JobStatus.RETRY_PENDING
            return Reopened(False, job.status.value if terminal_or_pending else "in_flight", job)
        if job.ambiguous and not allow_ambiguous:
            return Reopened(False, "ambiguous", job)
        record = job.to_record()
        entry = {k: record[k] for k in HISTORY_FIELDS if k in record}
        entry.update(started_at=job.attempt_started_at or job.created_at, ended_at=job.updated_at)
        stamps = tuple(reached_attribute(s) for s in JobStatus if s != JobStatus.RETRY_PENDING)
        reopened = self._writer.write(
            job_id,
            JobStatus.RETRY_PENDING,
            from_={job.status},
            guard={"updated_at": job.updated_at},
            set_={
                "attempts": (job.attempts or 1) + 1,
                "history": [*(job.history or []), entry],
                # The next attempt starts now; `created_at` stays the upload's (history reads in order).
                "attempt_started_at": iso(self.clock()),
            },
            remove=(*OUTCOME_FIELDS, *stamps),
        )
        return Reopened(reopened, "reopened" if reopened else "changed", self.get(job_id))


__all__ = ["BY_PROJECT_INDEX", "BY_STATUS_INDEX", "LEASE", "MESSAGE_LIMIT", "JobStore"]
