"""Data access for the jobs table (DynamoDB). The only module that knows the table's shape.

Every write is conditional: the claim is an insert-if-absent (the guard against paying twice), and every
status change only moves forward (see models.RANK), so duplicate or late messages change nothing.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from cutout import aws_clients
from cutout.models import RANK, RETRYABLE, TERMINAL, JobStatus, iso, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Terminal records expire from the table after this long (TTL attribute `expires_at`).
TERMINAL_RETENTION = timedelta(days=90)
BY_STATUS_INDEX = "by-status"
BY_PROJECT_INDEX = "by-project"
# What a retry keeps of the outcome it replaces (one `history` entry) and what it clears for the next attempt.
HISTORY_FIELDS = (
    "status",
    "error_code",
    "error_message",
    "project_id",
    "credits_charged",
    "credits_refunded",
    "ambiguous",
)
OUTCOME_FIELDS = (
    "error_code",
    "error_message",
    "project_id",
    "credits_charged",
    "credits_refunded",
    "ambiguous",
    "expires_at",
    "submitted_at",
    "claimed_at",
    "claim_token",
    "finalize_until",
    "finalize_token",
)


def previous_project_ids(job: dict[str, Any]) -> set[str]:
    """Magic Hour projects of a retried job's earlier attempts: their late messages must not touch the new one."""
    return {str(h["project_id"]) for h in job.get("history") or [] if isinstance(h, dict) and h.get("project_id")}


def _ser(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in value.items() if v is not None}


def _deser(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: _deserializer.deserialize(v) for k, v in item.items()}
    # Numbers come back as Decimal; the record's numbers are all integers.
    return {k: (int(v) if type(v).__name__ == "Decimal" else v) for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class SourceObject:
    """What the submit path knows about an upload when it writes the first record."""

    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int | None
    background_key: str | None = None


@dataclass(frozen=True, slots=True)
class Reopened:
    """What `JobStore.reopen_for_retry` did: `reason` is "reopened" or why not (not_found, in_flight, complete,
    rejected, retry_pending, ambiguous, changed)."""

    ok: bool
    reason: str
    record: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Claim:
    won: bool
    token: str
    existing: dict[str, Any] | None


class JobStore:
    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        return self._client or aws_clients.dynamodb()

    # ----- reads -------------------------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any] | None:
        resp = self.client.get_item(TableName=self.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
        item = resp.get("Item")
        return _deser(item) if item else None

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

    def list_by_status(self, status: JobStatus, created_before: datetime | None = None) -> list[dict[str, Any]]:
        expr = "#s = :s"
        values: dict[str, Any] = {":s": {"S": status.value}}
        if created_before is not None:
            expr += " AND created_at < :c"
            values[":c"] = {"S": iso(created_before)}
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BY_STATUS_INDEX,
            "KeyConditionExpression": expr,
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
        }
        while True:
            resp = self.client.query(**kwargs)
            items.extend(_deser(i) for i in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # ----- the submit path -------------------------------------------------------------------------
    def _base_record(self, job_id: str, source: SourceObject, status: JobStatus) -> dict[str, Any]:
        now = iso(utc_now())
        return {
            "job_id": job_id,
            "status": status.value,
            "source_bucket": source.bucket,
            "source_key": source.key,
            "source_etag": source.etag.strip('"') if source.etag else None,
            "source_version_id": source.version_id,
            "source_size": source.size,
            "background_key": source.background_key,
            "created_at": now,
            "updated_at": now,
        }

    def claim(self, job_id: str, source: SourceObject) -> Claim:
        """Write the `submitting` record unless a job exists. Winning the claim is the licence to create.

        A job reopened by an operator (`retry_pending`) is claimable too, through this same condition, so a retry
        racing a redelivered upload still creates once. An UpdateItem rather than a PutItem: a reopened job keeps
        its `attempts` and `history`. `created_at` is the attempt's start (the sweeper's limit counts from it);
        earlier attempts' start times are in `history`.
        """
        token = uuid.uuid4().hex
        record = self._base_record(job_id, source, JobStatus.SUBMITTING)
        record.update(claimed_at=record["created_at"], claim_token=token)
        del record["job_id"]
        names = {f"#a{i}": k for i, k in enumerate(record)}
        values = {f":v{i}": _serializer.serialize(v) for i, v in enumerate(record.values()) if v is not None}
        sets = [f"#a{i} = :v{i}" for i, v in enumerate(record.values()) if v is not None]
        removes = [f"#a{i}" for i, v in enumerate(record.values()) if v is None]
        status_name = next(n for n, k in names.items() if k == "status")
        values[":retry"] = {"S": JobStatus.RETRY_PENDING.value}
        update = "SET " + ", ".join(sets)
        if removes:
            update += " REMOVE " + ", ".join(removes)
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=update,
                ConditionExpression=f"attribute_not_exists(job_id) OR {status_name} = :retry",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return Claim(won=False, token=token, existing=self.get(job_id))
        return Claim(won=True, token=token, existing=None)

    def release_claim(self, job_id: str, token: str) -> None:
        """Undo our own claim after a create that provably did not happen, so a retry may claim again.

        A first attempt's record is deleted; a reopened job (it has `attempts`) goes back to `retry_pending`
        instead, so its history survives a budget pause or a refused create."""
        try:
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
        except self.client.exceptions.ConditionalCheckFailedException:
            pass  # not ours any more, or a reopened job: handled below
        else:
            return
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET #s = :retry, updated_at = :u REMOVE claim_token, claimed_at",
                ConditionExpression="claim_token = :t AND #s = :submitting AND attribute_exists(attempts)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":t": {"S": token},
                    ":submitting": {"S": JobStatus.SUBMITTING.value},
                    ":retry": {"S": JobStatus.RETRY_PENDING.value},
                    ":u": {"S": iso(utc_now())},
                },
            )

    def put_rejected(self, job_id: str, source: SourceObject, code: str, message: str) -> bool:
        """Record an upload refused before any money was spent. A record that already exists is left alone."""
        record = self._base_record(job_id, source, JobStatus.REJECTED)
        record.update(error_code=code, error_message=message[:1000], expires_at=self._expiry())
        try:
            self.client.put_item(
                TableName=self.table, Item=_ser(record), ConditionExpression="attribute_not_exists(job_id)"
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return self._reject_retry(job_id, code, message)
        return True

    def _reject_retry(self, job_id: str, code: str, message: str) -> bool:
        """A reopened job whose retry is refused (its object deleted meanwhile, a lowered size limit): rejected in
        place, history kept, rather than left waiting in `retry_pending`."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=(
                    "SET #s = :rejected, error_code = :c, error_message = :m, expires_at = :e, updated_at = :u"
                ),
                ConditionExpression="#s = :retry",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":rejected": {"S": JobStatus.REJECTED.value},
                    ":retry": {"S": JobStatus.RETRY_PENDING.value},
                    ":c": {"S": code},
                    ":m": {"S": message[:1000]},
                    ":e": {"N": str(self._expiry())},
                    ":u": {"S": iso(utc_now())},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # ----- operator retry: the one backward move, explicit and conditional ------------------------------------
    def reopen_for_retry(self, job_id: str, *, allow_ambiguous: bool = False) -> Reopened:
        """Failed (error, timed_out, canceled) → `retry_pending`, keeping the record: the previous outcome is pushed
        onto `history`, `attempts` counts submit attempts (a first attempt has none: 1). The submit's claim takes
        the job from there, so a retry and a redelivered upload still create once.

        An ambiguous create (`ambiguous=true`) may already be paid: reopened only with `allow_ambiguous`. The
        update is conditional on the record being exactly the one read, so the history entry is what it replaced.
        """
        job = self.get(job_id)
        if job is None:
            return Reopened(False, "not_found", None)
        status = JobStatus(job["status"])
        if status not in RETRYABLE:
            reason = (
                status.value
                if status in (JobStatus.COMPLETE, JobStatus.REJECTED, JobStatus.RETRY_PENDING)
                else "in_flight"
            )
            return Reopened(False, reason, job)
        if job.get("ambiguous") and not allow_ambiguous:
            return Reopened(False, "ambiguous", job)
        entry = {k: job[k] for k in HISTORY_FIELDS if job.get(k) is not None}
        entry["started_at"] = job.get("created_at")
        entry["ended_at"] = job.get("updated_at")
        names = {f"#r{i}": k for i, k in enumerate(OUTCOME_FIELDS)}
        removes = ", ".join(names)
        amb = next(n for n, k in names.items() if k == "ambiguous")
        names.update({"#s": "status", "#u": "updated_at", "#n": "attempts", "#h": "history"})
        condition = "#s = :prev AND #u = :prev_u"
        values: dict[str, Any] = {
            ":retry": {"S": JobStatus.RETRY_PENDING.value},
            ":now": {"S": iso(utc_now())},
            ":one": {"N": "1"},
            ":entry": {"L": [_serializer.serialize({k: v for k, v in entry.items() if v is not None})]},
            ":empty": {"L": []},
            ":prev": {"S": status.value},
            ":prev_u": {"S": str(job.get("updated_at"))},
        }
        if not allow_ambiguous:
            condition += f" AND (attribute_not_exists({amb}) OR {amb} = :false)"
            values[":false"] = {"BOOL": False}
        try:
            resp = self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=(
                    "SET #s = :retry, #u = :now, #n = if_not_exists(#n, :one) + :one,"
                    " #h = list_append(if_not_exists(#h, :empty), :entry)"
                    f" REMOVE {removes}"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return Reopened(False, "changed", self.get(job_id))
        return Reopened(True, "reopened", _deser(resp["Attributes"]))

    # ----- forward-only updates ----------------------------------------------------------------------
    def advance(
        self,
        job_id: str,
        status: JobStatus,
        *,
        expect_project_id: str | None = None,
        require_project: bool = False,
        allow_from: frozenset[JobStatus] | None = None,
        only_if_error_code: str | None = None,
        attrs: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
    ) -> bool:
        """Move a job to `status` if that is forward from where it is. Returns False when nothing changed.

        `allow_from` widens the accepted previous states (e.g. a completion that adopts an ambiguous create), and
        `only_if_error_code` then pins which failure may be left; `expect_project_id` guards against a message
        meant for another project (with `require_project`, the job must already carry that project id).
        """
        lower = {s for s, rank in RANK.items() if rank < RANK[status]}
        if allow_from:
            lower |= set(allow_from)
        values: dict[str, Any] = {"status": status.value, "updated_at": iso(utc_now())}
        if status in TERMINAL:
            values["expires_at"] = self._expiry()
        values.update({k: v for k, v in (attrs or {}).items() if v is not None})
        names = {f"#a{i}": k for i, k in enumerate(values)}
        expr_values = {f":v{i}": _serializer.serialize(v) for i, v in enumerate(values.values())}
        update = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values)))
        if remove:
            rnames = {f"#r{i}": k for i, k in enumerate(remove)}
            names.update(rnames)
            update += " REMOVE " + ", ".join(rnames)
        allowed = sorted(s.value for s in lower)
        names["#st"] = "status"
        placeholders = []
        for i, s in enumerate(allowed):
            expr_values[f":from{i}"] = {"S": s}
            placeholders.append(f":from{i}")
        condition = f"attribute_exists(job_id) AND #st IN ({', '.join(placeholders)})"
        if expect_project_id is not None:
            names["#pid"] = "project_id"
            expr_values[":pid"] = {"S": expect_project_id}
            condition += " AND #pid = :pid" if require_project else " AND (attribute_not_exists(#pid) OR #pid = :pid)"
        if only_if_error_code is not None:
            names["#ec"] = "error_code"
            expr_values[":ec"] = {"S": only_if_error_code}
            expr_values[":errst"] = {"S": JobStatus.ERROR.value}
            condition += " AND (#st <> :errst OR #ec = :ec)"
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=expr_values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def record_created(self, job_id: str, token: str, project_id: str, credits_charged: int) -> bool:
        """submitting → queued, only by the claim's owner (a stale claim may meanwhile have been resolved)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=(
                    "SET #s = :queued, project_id = :p, credits_charged = :c, updated_at = :u, submitted_at = :u"
                    " REMOVE claim_token"
                ),
                ConditionExpression="#s = :submitting AND claim_token = :t",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":queued": {"S": JobStatus.QUEUED.value},
                    ":submitting": {"S": JobStatus.SUBMITTING.value},
                    ":p": {"S": project_id},
                    ":c": {"N": str(credits_charged)},
                    ":u": {"S": iso(utc_now())},
                    ":t": {"S": token},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            # Someone resolved our claim as ambiguous in the meantime; adopt the project id so the webhook
            # or a poll can still complete it.
            return self.advance(
                job_id,
                JobStatus.QUEUED,
                allow_from=frozenset({JobStatus.ERROR}),
                only_if_error_code="create_outcome_unknown",
                attrs={"project_id": project_id, "credits_charged": credits_charged, "ambiguous": True},
                remove=("error_code", "error_message", "expires_at"),
            )
        return True

    def counter_add(self, counter_id: str, amount: int, limit: int, ttl: datetime) -> bool:
        """Atomically add `amount` to a counter item unless that would pass `limit` (0 = no limit)."""
        condition = "attribute_not_exists(credits) OR credits <= :room" if limit > 0 else None
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"job_id": {"S": counter_id}},
            "UpdateExpression": "ADD credits :a SET expires_at = :e",
            "ExpressionAttributeValues": {
                ":a": {"N": str(amount)},
                ":e": {"N": str(int(ttl.timestamp()))},
            },
        }
        if condition:
            kwargs["ConditionExpression"] = condition
            kwargs["ExpressionAttributeValues"][":room"] = {"N": str(limit - amount)}
        try:
            self.client.update_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    @staticmethod
    def _expiry() -> int:
        return int((utc_now() + TERMINAL_RETENTION).timestamp())

    # ----- finalization lease: one S3 write and one event per job, even with webhook + poll racing -------
    def begin_finalize(self, job_id: str, token: str, lease_seconds: int, *, adopt_ambiguous: bool = False) -> bool:
        """Take the right to write this job's output. Fails while another finalizer's lease is fresh."""
        now = utc_now()
        allowed = [JobStatus.SUBMITTING.value, JobStatus.QUEUED.value, JobStatus.RENDERING.value]
        condition = "(#s IN (:a0, :a1, :a2)"
        values: dict[str, Any] = {f":a{i}": {"S": s} for i, s in enumerate(allowed)}
        if adopt_ambiguous:
            condition += " OR (#s = :err AND error_code = :unknown)"
            values[":err"] = {"S": JobStatus.ERROR.value}
            values[":unknown"] = {"S": "create_outcome_unknown"}
        condition += ") AND (attribute_not_exists(finalize_until) OR finalize_until < :now)"
        values.update(
            {
                ":now": {"S": iso(now)},
                ":until": {"S": iso(now + timedelta(seconds=lease_seconds))},
                ":t": {"S": token},
            }
        )
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET finalize_until = :until, finalize_token = :t",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def end_finalize(self, job_id: str, token: str) -> None:
        """Give the lease back after a failed attempt so the retry need not wait for it to expire."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="REMOVE finalize_until, finalize_token",
                ConditionExpression="finalize_token = :t",
                ExpressionAttributeValues={":t": {"S": token}},
            )

    def complete(self, job_id: str, token: str, attrs: dict[str, Any]) -> bool:
        """Mark complete, only by the lease holder. True exactly once per job."""
        values = {
            "status": JobStatus.COMPLETE.value,
            "updated_at": iso(utc_now()),
            "expires_at": self._expiry(),
            **{k: v for k, v in attrs.items() if v is not None},
        }
        names = {f"#a{i}": k for i, k in enumerate(values)}
        expr_values = {f":v{i}": _serializer.serialize(v) for i, v in enumerate(values.values())}
        expr_values[":t"] = {"S": token}
        update = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values)))
        update += " REMOVE finalize_until, finalize_token, error_code, error_message"
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=update,
                ConditionExpression="finalize_token = :t",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=expr_values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
