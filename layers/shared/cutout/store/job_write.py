"""The one conditional write every job transition is built on (job_store.py lists the transitions).

A refused condition answers False: nobody raises on a lost race. A status change stamps `updated_at`,
`<status>_at` the first time the status is reached (the job's history), and `expires_at` (TTL) when terminal.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from cutout.domain.job import SourceObject
from cutout.domain.models import JobStatus
from cutout.store.dynamo_expressions import Expression, update_expression
from cutout.store.job_queries import JobQueries

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MESSAGE_LIMIT = 1000  # characters of an error message kept on the record
# The attributes a finalize lease consists of: dropped when the job ends, whoever ends it.
LEASE = ("finalize_until", "finalize_token")


# What a reopened (`retry_pending`) record keeps when the claim, the wait or a rejection takes it: the upload's time.
# The attempt's own start is `attempt_started_at` (stamped by `reopen_for_retry`).
UPLOAD_TIME = frozenset({"created_at"})


class JobWriter:
    """`write`, on which every transition of `JobStore` is built, against the table the reads use."""

    def __init__(self, queries: JobQueries) -> None:
        # The reads' table, client and clock: one place says which table and what "now" is.
        self._queries = queries
        self.table = queries.table
        self.clock = queries.clock

    @property
    def client(self) -> DynamoDBClient:
        return self._queries.client

    # ----- the one conditional write ----------------------------------------------------------------
    def write(
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
        keep: frozenset[str] = frozenset(),
    ) -> bool:
        """One conditional UpdateItem; False when its condition refused it (a lost race, a late message).

        `insert`: the record must not exist yet (or be in one of `from_`, when given); otherwise it must exist,
        in one of `from_` (None: any status).
        `guard`: attributes that must hold these values (a claim or lease token). `project`: (id, required):
        the job's project must be this one (or still unset unless required). `error_code_if_error`: an `error`
        record may only be left when it carries this code (an ambiguous create). `keep`: attributes of `set_`
        written only where the record lacks them (a retried record keeps its upload's `created_at`)."""
        expr = expr or Expression()
        now = self.clock()
        update = update_expression(expr, to, set_ or {}, remove, now, stamp=stamp, keep=keep)
        conditions = [condition] if condition else []
        exists = f"attribute_{'not_' if insert else ''}exists({expr.name('job_id')})"
        if from_ is not None:
            exists = f"({exists} OR {expr.status_in(from_)})" if insert else f"{exists} AND {expr.status_in(from_)}"
        conditions.append(exists)
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


def source_record(source: SourceObject, now: str) -> dict[str, Any]:
    """The upload's attributes on a new record."""
    return {
        "source_bucket": source.bucket,
        "source_key": source.key,
        "source_etag": source.etag.strip('"') if source.etag else None,
        "source_version_id": source.version_id,
        "source_size": source.size,
        "background_key": source.background_key,
        "created_at": now,
    }


def error_attrs(code: str, message: str) -> dict[str, str]:
    return {"error_code": code, "error_message": message[:MESSAGE_LIMIT]}
