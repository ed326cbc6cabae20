"""One jobs-table record as a frozen, typed value (what `JobStore` reads return).

The table stores plain attributes; `Job.from_item` turns DynamoDB's typed item into this value once, so the
domain reads `job.status` and `job.project_id` rather than keys of a dict. Attributes the code does not know
(written by a newer version) are kept in `extra`, so `to_record` loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from cutout.models import CREATE_OUTCOME_UNKNOWN, TERMINAL, JobStatus

_deserializer = TypeDeserializer()


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed item → plain Python values. Numbers come back as Decimal; the record's are integers."""
    out = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {k: (int(v) if isinstance(v, Decimal) else v) for k, v in out.items()}


def parse_time(value: str) -> datetime:
    """Our timestamps are ISO 8601 with a `Z` (see models.iso)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def reached_attribute(status: JobStatus) -> str:
    """The attribute recording when a job first reached `status` (e.g. `queued_at`), for an operator's history."""
    return f"{status.value}_at"


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
    existing: Job | None


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    status: JobStatus
    source_bucket: str
    source_key: str
    created_at: str
    updated_at: str
    source_etag: str | None = None
    source_version_id: str | None = None
    source_size: int | None = None
    background_key: str | None = None
    project_id: str | None = None
    credits_charged: int | None = None
    credits_refunded: bool | None = None
    claim_token: str | None = None
    claimed_at: str | None = None
    submitted_at: str | None = None
    completed_at: str | None = None
    output_bucket: str | None = None
    output_key: str | None = None
    output_size: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    ambiguous: bool | None = None
    finalize_until: str | None = None
    finalize_token: str | None = None
    # The in-flight slot this job holds or held (admission.py): whoever ends the job releases it by this name.
    slot: str | None = None
    # A result that arrived after the job had timed out, and completed it anyway (`complete_late`).
    late: bool | None = None
    late_after_timeout_at: str | None = None
    expires_at: int | None = None
    # When each status was first reached (`<status>_at` attributes), and anything else the table holds.
    reached: Mapping[JobStatus, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Job:
        """From a DynamoDB item (typed attribute values, as get_item/query/scan return them)."""
        return cls.from_record(plain_item(item))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Job:
        """From plain values (what `to_record` gives)."""
        known = {f.name for f in fields(cls)} - {"reached", "extra", "status"}
        reached_names = {reached_attribute(s): s for s in JobStatus}
        values = {k: v for k, v in record.items() if k in known}
        reached = {reached_names[k]: str(v) for k, v in record.items() if k in reached_names}
        extra = {k: v for k, v in record.items() if k not in known and k not in reached_names and k != "status"}
        return cls(status=JobStatus(record["status"]), reached=reached, extra=extra, **values)

    def to_record(self) -> dict[str, Any]:
        """The plain record as the table holds it (absent attributes left out)."""
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name not in ("reached", "extra"):
                value = getattr(self, f.name)
                if value is not None:
                    out[f.name] = value.value if isinstance(value, JobStatus) else value
        out.update({reached_attribute(s): at for s, at in self.reached.items()})
        return out

    # ----- what the use cases ask of a job ------------------------------------------------------------
    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_ambiguous(self) -> bool:
        """Recorded as a create whose outcome is unknown (a placeholder error, resolvable by its project)."""
        return self.status == JobStatus.ERROR and self.error_code == CREATE_OUTCOME_UNKNOWN

    @property
    def is_unadopted_ambiguous(self) -> bool:
        """An ambiguous create no project has claimed yet: the first project naming this job resolves it."""
        return self.error_code == CREATE_OUTCOME_UNKNOWN and not self.project_id

    @property
    def created(self) -> datetime:
        return parse_time(self.created_at)

    @property
    def rendering_since(self) -> datetime | None:
        """When Magic Hour first reported the project rendering (poll bounds count from here, not the create)."""
        at = self.reached.get(JobStatus.RENDERING)
        return parse_time(at) if at else None

    @property
    def claimed(self) -> datetime | None:
        return parse_time(self.claimed_at) if self.claimed_at else None
