"""The renditions step's writes on a job record: its own attributes only, never `status`, only while `complete`.

    renditions         map  preset name -> Rendition (domain/rendition.py): one entry per preset, replaced on a rerun
    rendition_flags    list the judge's findings ({code, figure, message}) of the latest run
    requested_presets  list the names the upload asked for (x-amz-meta-cutout-presets)
    unknown_presets    list the names asked for (or rebuilt) that the presets document does not define
    renditions_at      str  when the latest run recorded them

Keyed by preset, so a redelivered completion (or a rebuild) rewrites its entries instead of adding a second set.
Each write is conditional on `status = complete`: a job an operator reopened meanwhile is left alone (False).
Nested map entries are set in place (`renditions.#name`), so a rebuild of one preset keeps the others' entries;
DynamoDB cannot create the map and set a path inside it in one update, so a job's first run makes it first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cutout.domain.models import JobStatus
from cutout.domain.rendition import Rendition
from cutout.store.dynamo_expressions import Expression
from cutout.store.job_queries import JobQueries

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class JobRenditions:
    """Record a renditions run on a complete job."""

    def __init__(self, queries: JobQueries) -> None:
        self._queries = queries
        self.table = queries.table

    @property
    def client(self) -> DynamoDBClient:
        return self._queries.client

    def record(
        self,
        job_id: str,
        renditions: Mapping[str, Rendition],
        *,
        at: str,
        flags: Sequence[Mapping[str, Any]] = (),
        requested: Sequence[str] = (),
        unknown: Sequence[str] = (),
        first: bool = False,
    ) -> bool:
        """One run's outcome; False when the job is not `complete` (any more). `first`: the record has no
        `renditions` map yet (as read), so it is made before its entries are set."""
        if first:
            made = Expression()
            renditions_map = made.name("renditions")
            update = f"SET {renditions_map} = if_not_exists({renditions_map}, {made.value({})})"
            if not self._write(job_id, update, made):
                return False
        expr = Expression()
        entry = expr.name("renditions")
        sets = [f"{entry}.{expr.name(name)} = {expr.value(r.to_record())}" for name, r in renditions.items()]
        attrs = {
            # DynamoDB numbers are decimals: a float figure is refused by the serializer.
            "rendition_flags": [
                {k: Decimal(str(v)) if isinstance(v, float) else v for k, v in f.items()} for f in flags
            ],
            "requested_presets": list(requested),
            "unknown_presets": list(unknown),
            "renditions_at": at,
        }
        sets += [expr.equals(name, value) for name, value in attrs.items()]
        return self._write(job_id, "SET " + ", ".join(sets), expr)

    def _write(self, job_id: str, update: str, expr: Expression) -> bool:
        condition = f"attribute_exists({expr.name('job_id')}) AND {expr.status_in({JobStatus.COMPLETE})}"
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=expr.names,
                ExpressionAttributeValues=expr.values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
