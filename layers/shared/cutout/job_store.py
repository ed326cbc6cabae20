"""Data access for the jobs table (DynamoDB): the job state machine, one named transition per legal move.

    transition            from                                    to                            guard (besides `from`)
    --------------------  --------------------------------------  ----------------------------  ----------------------
    wait                  (absent)                                waiting                       nothing spent (no slot)
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
    begin_finalize        in flight (+ ambiguous error)           (unchanged)                   no fresh finalize lease
      ... late=True       timed_out (a late result)               (unchanged)                   no fresh finalize lease
    end_finalize          any                                     (unchanged)                   our finalize lease
    complete              any                                     complete                      our finalize lease

"Forward" means a lower rank (models.RANK): duplicate or late messages change nothing. Every move is ONE
conditional write built by `_write`; a refused condition answers False (nobody raises on a lost race). A status
change stamps `updated_at`, `<status>_at` the first time the status is reached (the job's history), and
`expires_at` (TTL) when terminal. To add a state: a JobStatus + its RANK; to add a move: a method here calling
`_write` with its `from` set and guard, and a row above.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cutout import aws_clients
from cutout.dynamo_expressions import Expression, update_expression
from cutout.job import Claim, Job, SourceObject
from cutout.models import CREATE_OUTCOME_UNKNOWN, IN_FLIGHT, Clock, JobStatus, forward_to, iso, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BY_STATUS_INDEX = "by-status"
BY_PROJECT_INDEX = "by-project"
MESSAGE_LIMIT = 1000  # characters of an error message kept on the record
# The attributes a finalize lease consists of: dropped when the job ends, whoever ends it.
LEASE = ("finalize_until", "finalize_token")


class JobStore:
    def __init__(self, table: str, client: DynamoDBClient | None = None, *, clock: Clock = utc_now) -> None:
        self.table = table
        self._client = client
        self.clock = clock

    @property
    def client(self) -> DynamoDBClient:
        return self._client or aws_clients.dynamodb()

    # ----- reads -------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        resp = self.client.get_item(TableName=self.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
        item = resp.get("Item")
        return Job.from_item(item) if item else None

    def job_id_for_project(self, project_id: str) -> str | None:
        resp = self.client.query(
            TableName=self.table,
            IndexName=BY_PROJECT_INDEX,
            KeyConditionExpression="project_id = :p",
            ExpressionAttributeValues={":p": {"S": project_id}},
            Limit=2,
        )
        items = resp.get("Items", [])
        return str(items[0]["job_id"]["S"]) if items else None

    def list_by_status(
        self, status: JobStatus, created_before: datetime | None = None, *, created_after: datetime | None = None
    ) -> list[Job]:
        expr = "#s = :s"
        values: dict[str, Any] = {":s": {"S": status.value}}
        if created_before is not None and created_after is not None:
            expr += " AND created_at BETWEEN :a AND :c"
            values[":a"] = {"S": iso(created_after)}
            values[":c"] = {"S": iso(created_before)}
        elif created_before is not None:
            expr += " AND created_at < :c"
            values[":c"] = {"S": iso(created_before)}
        elif created_after is not None:
            expr += " AND created_at > :a"
            values[":a"] = {"S": iso(created_after)}
        jobs: list[Job] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BY_STATUS_INDEX,
            "KeyConditionExpression": expr,
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
        }
        while True:
            resp = self.client.query(**kwargs)
            jobs.extend(Job.from_item(i) for i in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return jobs
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # ----- the submit path -------------------------------------------------------------------------
    def claim(self, job_id: str, source: SourceObject, *, slot: str | None = None) -> Claim:
        """Insert the `submitting` record unless one exists. Winning the claim is the only licence to create.
        `slot`: the in-flight slot taken for it (admission.py), recorded so whoever ends the job releases it."""
        token = uuid.uuid4().hex
        now = iso(self.clock())
        record = {**self._source_record(source, now), "claimed_at": now, "claim_token": token, "slot": slot}
        if self._write(job_id, JobStatus.SUBMITTING, insert=True, set_=record):
            return Claim(won=True, token=token, existing=None)
        return Claim(won=False, token=token, existing=self.get(job_id))

    def wait(self, job_id: str, source: SourceObject) -> Claim:
        """Insert the `waiting` record unless one exists: no slot is free, the upload waits, visibly and for free.
        (Nothing is presigned yet: the URL is made when the job is dispatched.)"""
        record = self._source_record(source, iso(self.clock()))
        if self._write(job_id, JobStatus.WAITING, insert=True, set_=record):
            return Claim(won=True, token="", existing=None)
        return Claim(won=False, token="", existing=self.get(job_id))

    def dispatch(self, job_id: str, slot: str) -> str | None:
        """waiting → submitting with `slot`: the licence to create, like a claim. Returns the claim token, or None
        when another dispatcher (or a duplicate delivery) took this job first."""
        token = uuid.uuid4().hex
        now = iso(self.clock())
        taken = self._write(
            job_id,
            JobStatus.SUBMITTING,
            from_={JobStatus.WAITING},
            set_={"claimed_at": now, "claim_token": token, "slot": slot},
        )
        return token if taken else None

    def back_to_waiting(self, job_id: str, token: str, reason: str) -> bool:
        """A create that provably did not happen (Magic Hour's 429 at its plan limit, a 502/503): the job waits
        again instead of failing its message, and gives up its slot (the caller releases it)."""
        return self._write(
            job_id,
            JobStatus.WAITING,
            from_={JobStatus.SUBMITTING},
            guard={"claim_token": token},
            set_={"waiting_reason": reason[:MESSAGE_LIMIT]},
            remove=("claim_token", "claimed_at", "slot"),
        )

    def release_claim(self, job_id: str, token: str) -> None:
        """Delete our own claim after a create that provably did not happen, so a retry may claim again."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.delete_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                ConditionExpression="claim_token = :t AND #s = :submitting",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":t": {"S": token},
                    ":submitting": {"S": JobStatus.SUBMITTING.value},
                },
            )

    def reject(self, job_id: str, source: SourceObject, code: str, message: str) -> bool:
        """Record an upload refused before any money was spent. A record that already exists is left alone."""
        record = {**self._source_record(source, iso(self.clock())), **_error(code, message)}
        return self._write(job_id, JobStatus.REJECTED, insert=True, set_=record)

    def reject_by_magic_hour(self, job_id: str, token: str, code: str, message: str) -> bool:
        """Magic Hour refused our create (400/422): nothing was created, the job ends rejected."""
        return self._write(
            job_id,
            JobStatus.REJECTED,
            from_={JobStatus.SUBMITTING},
            guard={"claim_token": token},
            set_=_error(code, message),
            remove=("claim_token",),
        )

    def mark_queued(self, job_id: str, token: str, project_id: str, credits_charged: int) -> bool:
        """Record the create: submitting → queued, only by the claim's owner. If the claim was meanwhile resolved
        as an ambiguous create (a stale claim), adopt the project so the webhook or a poll can still finish it."""
        now = iso(self.clock())
        recorded = self._write(
            job_id,
            JobStatus.QUEUED,
            from_={JobStatus.SUBMITTING},
            guard={"claim_token": token},
            set_={"project_id": project_id, "credits_charged": credits_charged, "submitted_at": now},
            remove=("claim_token",),
        )
        # Another token on a `submitting` record is not ours to move: only the ambiguous placeholder is adopted.
        return recorded or self._adopt(job_id, JobStatus.QUEUED, project_id, credits_charged, from_={JobStatus.ERROR})

    def mark_ambiguous(self, job_id: str, why: str) -> bool:
        """The create may have happened and cannot be repeated (no idempotency key): a placeholder error that
        the project, should it report in, resolves (`adopt_ambiguous`, `fail(adopting=True)`)."""
        return self._write(
            job_id,
            JobStatus.ERROR,
            from_=forward_to(JobStatus.ERROR),
            set_={**_error(CREATE_OUTCOME_UNKNOWN, why), "ambiguous": True},
            remove=("claim_token",),
        )

    # ----- progress reported by Magic Hour ----------------------------------------------------------
    def mark_progress(self, job_id: str, status: JobStatus, project_id: str, *, require_project: bool = False) -> bool:
        """queued/rendering, forward only, for the job's own project (`require_project`: it must be recorded)."""
        if status not in (JobStatus.QUEUED, JobStatus.RENDERING):
            raise ValueError(f"progress is queued or rendering, not {status}")
        return self._write(
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
        return self._write(
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
    ) -> bool:
        """error / canceled / timed_out with a code and message. `adopting`: the job is an ambiguous create whose
        project has reported in; its placeholder error gives way to what Magic Hour says happened."""
        if status not in (JobStatus.ERROR, JobStatus.CANCELED, JobStatus.TIMED_OUT):
            raise ValueError(f"a failure ends error, canceled or timed_out, not {status}")
        return self._write(
            job_id,
            status,
            from_=forward_to(status) | ({JobStatus.ERROR} if adopting else set()),
            error_code_if_error=CREATE_OUTCOME_UNKNOWN if adopting else None,
            set_={**_error(code, message), **attrs},
            remove=LEASE,
        )

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
        return self._write(
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
        self._write(job_id, None, guard={"finalize_token": token}, remove=LEASE, stamp=False)

    def complete(self, job_id: str, token: str, attrs: dict[str, Any]) -> bool:
        """Mark complete, only by the lease holder. True exactly once per job."""
        return self._write(
            job_id,
            JobStatus.COMPLETE,
            guard={"finalize_token": token},
            set_=attrs,
            remove=(*LEASE, "error_code", "error_message"),
        )

    # ----- the one conditional write ----------------------------------------------------------------
    def _write(
        self,
        job_id: str,
        to: JobStatus | None,
        *,
        from_: Collection[JobStatus] | None = None,
        insert: bool = False,
        guard: dict[str, str] | None = None,
        project: tuple[str, bool] | None = None,
        error_code_if_error: str | None = None,
        condition: str | None = None,
        expr: Expression | None = None,
        set_: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        stamp: bool = True,
    ) -> bool:
        """One conditional UpdateItem; False when its condition refused it (a lost race, a late message).

        `insert`: the record must not exist yet; otherwise it must, in one of `from_` (None: any status).
        `guard`: attributes that must hold these values (a claim or lease token). `project`: (id, required):
        the job's project must be this one (or still unset unless required). `error_code_if_error`: an `error`
        record may only be left when it carries this code (an ambiguous create)."""
        expr = expr or Expression()
        now = self.clock()
        update = update_expression(expr, to, set_ or {}, remove, now, stamp=stamp)
        conditions = [condition] if condition else []
        conditions.append(f"attribute_{'not_' if insert else ''}exists({expr.name('job_id')})")
        if from_ is not None:
            conditions.append(expr.status_in(from_))
        conditions += [expr.equals(k, v) for k, v in (guard or {}).items()]
        if project is not None:
            conditions.append(expr.project_is(*project))
        if error_code_if_error is not None:
            conditions.append(expr.error_code_if_error(error_code_if_error))
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=update,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=expr.names,
                ExpressionAttributeValues=expr.values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    @staticmethod
    def _source_record(source: SourceObject, now: str) -> dict[str, Any]:
        return {
            "source_bucket": source.bucket,
            "source_key": source.key,
            "source_etag": source.etag.strip('"') if source.etag else None,
            "source_version_id": source.version_id,
            "source_size": source.size,
            "background_key": source.background_key,
            "created_at": now,
        }


def _error(code: str, message: str) -> dict[str, str]:
    return {"error_code": code, "error_message": message[:MESSAGE_LIMIT]}
