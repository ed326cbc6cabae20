"""The one conditional write every job transition is built on (job_store.py lists the transitions).

A refused condition answers False: nobody raises on a lost race. A status change stamps `updated_at`,
`<status>_at` the first time the status is reached (the job's history), and `expires_at` (TTL) when terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
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


class AlongsideRefused(Exception):
    """The item written in the same transaction as a job's update (`write(..., alongside=)`) was refused by its own
    condition, while the job's update would have gone through: nothing was written."""


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
    def write(self, job_id: str, to: JobStatus | None, **how: Any) -> bool:
        """One conditional UpdateItem; False when its condition refused it (a lost race, a late message). `how`:
        the arguments of `write_returning`, which is this write answering the record as written."""
        return self.write_returning(job_id, to, returning=False, **how) is not None

    def write_returning(
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
        returning: bool = True,
        refused: Callable[[dict[str, Any] | None], None] | None = None,
        alongside: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """One conditional UpdateItem; None when its condition refused it (a lost race, a late message), else the
        record as this write left it (`ReturnValues=ALL_NEW`: no read and no capacity of its own, "UpdateItem",
        DynamoDB API reference), or {} when `returning` is off. What ends a job publishes the record it wrote:
        reading it back cost a call per job.

        `insert`: the record must not exist yet (or be in one of `from_`, when given); otherwise it must exist,
        in one of `from_` (None: any status).
        `guard`: attributes that must hold these values (a claim or lease token). `project`: (id, required):
        the job's project must be this one (or still unset unless required). `error_code_if_error`: an `error`
        record may only be left when it carries this code (an ambiguous create). `keep`: attributes of `set_`
        written only where the record lacks them (a retried record keeps its upload's `created_at`). `refused`:
        called, when the condition refuses the write, with the record as it stands (None: there is none), which
        DynamoDB returns with the refusal (`ReturnValuesOnConditionCheckFailure=ALL_OLD`): no read to learn why.
        `alongside`: a conditional Put (of another item of the table) made in the same transaction, both or
        neither (`TransactWriteItems`: one call, twice the write units); its own refusal raises AlongsideRefused."""
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
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"job_id": {"S": job_id}},
            "UpdateExpression": update,
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": expr.names,
            "ExpressionAttributeValues": expr.values,
        }
        if refused is not None:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if alongside is not None:
            return self._transact(alongside, request, refused)
        try:
            resp = self.client.update_item(**request, ReturnValues="ALL_NEW" if returning else "NONE")
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            if refused is not None:
                refused(exc.response.get("Item") or None)  # type: ignore[arg-type]
            return None
        return dict(resp.get("Attributes") or {})

    def _transact(
        self,
        put: dict[str, Any],
        update: dict[str, Any],
        refused: Callable[[dict[str, Any] | None], None] | None,
    ) -> dict[str, Any] | None:
        """The Put and the job's Update in one transaction: {} when both were written, None when the job's condition
        refused it (reported to `refused`), AlongsideRefused when only the Put's did. A transaction that is
        cancelled lists a reason per item, in order ("TransactWriteItems", DynamoDB API reference)."""
        try:
            items: Any = [{"Put": {"TableName": self.table, **put}}, {"Update": update}]
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            codes = [str(r.get("Code") or "None") for r in reasons]
            if len(codes) == 2 and codes[1] == "ConditionalCheckFailed":
                if refused is not None:
                    refused(reasons[1].get("Item") or None)  # type: ignore[arg-type]
                return None
            # Concurrent takers of one slot: a condition refused, or a transaction on it still in progress.
            if len(codes) == 2 and codes[0] in ("ConditionalCheckFailed", "TransactionConflict") and codes[1] == "None":
                raise AlongsideRefused(put.get("Item", {}).get("job_id")) from None
            raise  # throttled, a conflicting transaction, ...: the record's message comes back
        return {}


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
