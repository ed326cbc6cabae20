"""Reading the jobs table for operators: counts, the oldest open job, newest-first listings, spend per day, and
how a record reads for a person.

Only the ``by-status`` index is queried (never a scan): it holds job records alone, as the table's other items
(``budget#<day>`` counters, ``webhook#<signature>`` replay marks) carry no ``status``. Records are plain
mappings here, so a typed Job model can replace them by changing ``summary``/``history`` only.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from cutout.domain.models import CONFIGURATION_REJECTIONS, TERMINAL, JobStatus
from cutout.domain.models import iso as stored_time  # the record's own timestamp format: key conditions compare text

from cutout_dev.ops.output import parse_time

# The index docs/design.md fixes (status hash, created_at range).
BY_STATUS_INDEX = "by-status"
# Timestamps a record may carry that are not steps of its history.
NOT_HISTORY = frozenset({"expires_at", "finalize_until", "updated_at"})
# The store stamps `<status>_at` when a status is first reached; where the record also has the older, more telling
# name for the same moment, that one is the step shown (one step per moment, not two).
SAME_MOMENT = {"submitting_at": "claimed_at", "queued_at": "submitted_at", "complete_at": "completed_at"}

_deserializer = TypeDeserializer()


def statuses() -> list[str]:
    """Every status the domain knows (new ones — e.g. a retry's — are counted without a change here)."""
    return [s.value for s in JobStatus]


def open_statuses() -> list[str]:
    return [s.value for s in JobStatus if s not in TERMINAL]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    return value


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


@dataclass(frozen=True)
class JobsTable:
    """The reads the ops commands make, through a DynamoDB client (moto or AWS alike)."""

    client: Any
    name: str

    def get(self, job_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.name, Key={"job_id": {"S": job_id}}, ConsistentRead=True).get("Item")
        return deserialize(item) if item else None

    def _query(self, status: str, since: datetime | None, **extra: Any) -> dict[str, Any]:
        condition = "#s = :s"
        values: dict[str, Any] = {":s": {"S": status}}
        if since is not None:
            condition += " AND created_at >= :since"
            values[":since"] = {"S": stored_time(since)}
        return {
            "TableName": self.name,
            "IndexName": BY_STATUS_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
            **extra,
        }

    def count(self, status: str, since: datetime | None = None) -> int:
        """How many jobs have ``status`` (Select=COUNT: DynamoDB counts, no item is returned)."""
        pages = self.client.get_paginator("query").paginate(**self._query(status, since, Select="COUNT"))
        return sum(int(page.get("Count", 0)) for page in pages)

    def oldest(self, status: str) -> dict[str, Any] | None:
        """The job with ``status`` created first (one item read)."""
        items = self.client.query(**self._query(status, None, ScanIndexForward=True, Limit=1)).get("Items", [])
        return deserialize(items[0]) if items else None

    def by_status(
        self,
        status: str,
        since: datetime | None = None,
        *,
        newest_first: bool = True,
        prefix: str | None = None,
        attributes: tuple[str, ...] = (),
        flagged: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Jobs with ``status`` (created at or after ``since``), page by page, newest first by default; only
        ``attributes`` of each when given (less to read for a sum over many jobs)."""
        extra: dict[str, Any] = {"ScanIndexForward": not newest_first}
        kwargs = self._query(status, since, **extra)
        if attributes:
            names = {f"#p{i}": a for i, a in enumerate(attributes)}
            kwargs["ExpressionAttributeNames"].update(names)
            kwargs["ProjectionExpression"] = ", ".join(names)
        filters = []
        if prefix:
            filters.append("begins_with(source_key, :p)")
            kwargs["ExpressionAttributeValues"][":p"] = {"S": prefix}
        if flagged:  # read only the jobs whose cutout the renditions step flagged
            filters.append("attribute_exists(rendition_flags) AND size(rendition_flags) > :none")
            kwargs["ExpressionAttributeValues"][":none"] = {"N": "0"}
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        for page in self.client.get_paginator("query").paginate(**kwargs):
            for item in page.get("Items", []):
                yield deserialize(item)

    def newest(
        self,
        status_list: Iterable[str],
        since: datetime | None = None,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        flagged: bool = False,
    ) -> list[dict[str, Any]]:
        """Jobs of every status in ``status_list`` merged newest first (each query is already in that order, so
        the merge reads no more than ``limit`` items per status); only those with rendition flags if ``flagged``."""
        streams = [self.by_status(s, since, prefix=prefix, flagged=flagged) for s in status_list]
        merged = heapq.merge(*streams, key=lambda j: str(j.get("created_at", "")), reverse=True)
        return list(itertools.islice(merged, limit))

    def budget_spent(self, day: str) -> int:
        """Credits reserved on UTC day ``day`` (YYYY-MM-DD) by the spend guard's counter (0 if none)."""
        item = self.get(f"budget#{day}")
        return int(item.get("credits", 0)) if item else 0


# -- how a record reads ----------------------------------------------------------------------------------------
def net_credits(job: Mapping[str, Any]) -> int:
    """Credits the job cost: charged, minus a refund (``credits_refunded`` is a flag or an amount)."""
    charged = int(job.get("credits_charged") or 0)
    refunded = job.get("credits_refunded")
    if refunded is True:
        return 0
    if isinstance(refunded, (int, float)) and not isinstance(refunded, bool):
        return max(0, charged - int(refunded))
    return charged


def source_uri(job: Mapping[str, Any]) -> str:
    return f"s3://{job.get('source_bucket', '?')}/{job.get('source_key', '')}"


def output_uri(job: Mapping[str, Any]) -> str | None:
    if job.get("output_key"):
        return f"s3://{job.get('output_bucket') or job.get('source_bucket', '?')}/{job['output_key']}"
    return None


def summary(job: Mapping[str, Any]) -> dict[str, Any]:
    """One line of ``cutout jobs`` (stable keys for ``--query``)."""
    return {
        "job_id": job.get("job_id"),
        "status": job.get("status"),
        "source": source_uri(job),
        "source_key": job.get("source_key"),
        "created_at": job.get("created_at"),
        "updated_at": job.get("updated_at"),
        "credits": net_credits(job),
        "error_code": job.get("error_code"),
        "output": output_uri(job),
        "output_key": job.get("output_key"),
        "flags": flag_codes(job),
    }


def history(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """When each step was reached (every ``<step>_at`` the record has), oldest first, then earlier attempts'
    outcomes if the record keeps them (``history``)."""
    steps = [
        {"step": key.removesuffix("_at"), "at": str(value)}
        for key, value in job.items()
        if key.endswith("_at")
        and key not in NOT_HISTORY
        and isinstance(value, str)
        and parse_time(value)
        and SAME_MOMENT.get(key) not in job
    ]
    # `retry_pending_at` is stamped at the first reopen only; a retried record's latest reopen is its
    # `attempt_started_at`: one step, at the reopen this attempt came from (earlier ones: "Earlier attempts").
    reopened = job.get("attempt_started_at")
    if isinstance(reopened, str):
        steps = [s for s in steps if s["step"] != "attempt_started"]
        steps = [{**s, "at": reopened} if s["step"] == "retry_pending" else s for s in steps]
    # Oldest first; at one moment (a claim stamps created_at and claimed_at alike) the upload comes first.
    steps.sort(key=lambda s: (s["at"], s["step"] != "created"))
    return steps


def detail(job: Mapping[str, Any]) -> dict[str, Any]:
    """Everything ``cutout job`` shows about one record."""
    previous = job.get("history")
    return {
        **summary(job),
        "source_etag": job.get("source_etag"),
        "source_version_id": job.get("source_version_id"),
        "source_size": job.get("source_size"),
        "background_key": job.get("background_key"),
        "project_id": job.get("project_id"),
        "credits_charged": job.get("credits_charged"),
        "credits_refunded": job.get("credits_refunded"),
        "ambiguous": bool(job.get("ambiguous")),
        "error_message": job.get("error_message"),
        "attempts": job.get("attempts"),
        "fix": fix_for(job),
        "steps": history(job),
        "previous_attempts": previous if isinstance(previous, list) else [],
        **renditions(job),
    }


def flag_codes(job: Mapping[str, Any]) -> list[str]:
    flags = job.get("rendition_flags")
    return [str(f.get("code")) for f in flags if isinstance(f, Mapping)] if isinstance(flags, list) else []


def renditions(job: Mapping[str, Any]) -> dict[str, Any]:
    """The renditions made from the cutout (one row per preset, by name), the judge's flags on it, and the
    preset names the upload asked for that the document does not define."""
    made = job.get("renditions")
    rows = (
        [
            {
                "name": name,
                "status": r.get("status"),
                "key": r.get("key"),
                "bytes": r.get("bytes"),
                "content_type": r.get("content_type"),
                "width": r.get("width"),
                "height": r.get("height"),
                "rendered_at": r.get("rendered_at"),
                "reason": r.get("reason"),
            }
            for name, r in sorted(made.items())
            if isinstance(r, Mapping)
        ]
        if isinstance(made, Mapping)
        else []
    )
    flags = job.get("rendition_flags")
    return {
        "renditions": rows,
        "renditions_at": job.get("renditions_at"),
        "flags": [dict(f) for f in flags if isinstance(f, Mapping)] if isinstance(flags, list) else [],
        "requested_presets": job.get("requested_presets"),
        "unknown_presets": list(job.get("unknown_presets") or []),
    }


def fix_for(job: Mapping[str, Any]) -> str | None:
    """What ends a rejection: a fix of the stack's configuration and a retry, or a corrected upload."""
    if job.get("status") != JobStatus.REJECTED:
        return None
    if job.get("error_code") in CONFIGURATION_REJECTIONS:
        return f"caused by the configuration, not the file: fix it (cutout doctor), then cutout retry {job['job_id']}"
    return "caused by the file: upload a corrected file (a retry of the same bytes is refused)"


def age_seconds(job: Mapping[str, Any], now: datetime | None = None) -> float | None:
    created = parse_time(str(job.get("created_at", "")))
    if created is None:
        return None
    return ((now or datetime.now(UTC)) - created).total_seconds()


_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``12h``, ``1d``, ``2w`` (ago) or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    text = text.strip()
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        return now - timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])
    moment = parse_time(text)
    if moment is None:
        raise ValueError(f"{text!r}: expected 30m, 12h, 1d, 2w or an ISO date/time")
    return moment


def since_argument(text: str) -> datetime:
    """`parse_since` as an argparse `type=`: a bad value is a usage error (exit status of argparse), not a crash."""
    import argparse

    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def days_back(days: int, now: datetime | None = None) -> list[str]:
    """The last ``days`` UTC dates, today first."""
    today = (now or datetime.now(UTC)).date()
    return [(today - timedelta(days=i)).isoformat() for i in range(days)]
