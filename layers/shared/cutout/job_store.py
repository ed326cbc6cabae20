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
from cutout.models import RANK, TERMINAL, JobStatus, iso, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Terminal records expire from the table after this long (TTL attribute `expires_at`).
TERMINAL_RETENTION = timedelta(days=90)
BY_STATUS_INDEX = "by-status"
BY_PROJECT_INDEX = "by-project"


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
        """Insert the `submitting` record unless one exists. Winning the claim is the licence to create."""
        token = uuid.uuid4().hex
        record = self._base_record(job_id, source, JobStatus.SUBMITTING)
        record.update(claimed_at=record["created_at"], claim_token=token)
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_ser(record),
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return Claim(won=False, token=token, existing=self.get(job_id))
        return Claim(won=True, token=token, existing=None)

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

    def put_rejected(self, job_id: str, source: SourceObject, code: str, message: str) -> bool:
        """Record an upload refused before any money was spent. A record that already exists is left alone."""
        record = self._base_record(job_id, source, JobStatus.REJECTED)
        record.update(error_code=code, error_message=message[:1000], expires_at=self._expiry())
        try:
            self.client.put_item(
                TableName=self.table, Item=_ser(record), ConditionExpression="attribute_not_exists(job_id)"
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

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
