"""One jobs-table record as a frozen, typed value (what `JobStore` reads return).

The table stores plain attributes; `Job.from_item` turns DynamoDB's typed item into this value once, so the
domain reads `job.status` and `job.project_id` rather than keys of a dict. Attributes the code does not know
(written by a newer version) are kept in `extra`, so `to_record` loses nothing.
"""

# No `from __future__ import annotations` in this module: a NamedTuple turns string annotations into ForwardRefs,
# compiling each one (~12 us a field at cold start; Job's 38 fields ~0.45 ms). Forward references are quoted.
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from boto3.dynamodb.types import TypeDeserializer

from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, TERMINAL, JobStatus

_deserializer = TypeDeserializer()
# The default of `Job.reached` / `Job.extra`: one shared, read-only empty mapping (a NamedTuple has no factories).
_NOTHING: Mapping[Any, Any] = MappingProxyType({})


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed item → plain Python values. Numbers come back as Decimal; the record's are integers."""
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    # Nested too: a retried job's `history` holds maps with numbers.
    if isinstance(value, Decimal):
        # The record's numbers are integers, except the renditions' flag figures (fractions).
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def parse_time(value: str) -> datetime:
    """Our timestamps are ISO 8601 with a `Z` (see models.iso)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def reached_attribute(status: JobStatus) -> str:
    """The attribute recording when a job first reached `status` (e.g. `queued_at`), for an operator's history."""
    return f"{status.value}_at"


# The value types here are NamedTuples, not frozen dataclasses: a dataclass generates and compiles its methods at
# import, 0.6-0.7 ms each on a cold start (Job, 38 fields: ~2 ms), a NamedTuple ~0.2 ms (measured, `-X importtime`
# and fresh-process imports); they stay immutable and typed.
class SourceObject(NamedTuple):
    """What the submit path knows about an upload when it writes the first record."""

    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int | None
    background_key: str | None = None


class Claim(NamedTuple):
    won: bool
    token: str
    existing: "Job | None"


class Reopened(NamedTuple):
    """What `JobStore.reopen_for_retry` did: `reason` is "reopened" or why not (not_found, in_flight, complete,
    rejected, retry_pending, ambiguous, changed); `job` is the record as it now stands."""

    ok: bool
    reason: str
    job: "Job | None"


class Job(NamedTuple):
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
    # A retried job (`JobStore.reopen_for_retry`): submit attempts so far, and each earlier attempt's outcome.
    attempts: int | None = None
    history: list[dict[str, Any]] | None = None
    # When the current attempt started (a retried job: its reopen); `created_at` stays the upload's time.
    attempt_started_at: str | None = None
    # What the renditions step recorded (never changing `status`; rendition.py): preset name -> its outcome, the
    # judge's flags, the names the upload asked for (its `x-amz-meta-cutout-presets`) and those no preset has.
    renditions: dict[str, dict[str, Any]] | None = None
    rendition_flags: list[dict[str, Any]] | None = None
    requested_presets: list[str] | None = None
    unknown_presets: list[str] | None = None
    renditions_at: str | None = None
    # When each status was first reached (`<status>_at` attributes), and anything else the table holds.
    reached: Mapping[JobStatus, str] = _NOTHING
    extra: Mapping[str, Any] = _NOTHING

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> "Job":
        """From a DynamoDB item (typed attribute values, as get_item/query/scan return them)."""
        return cls.from_record(plain_item(item))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Job":
        """From plain values (what `to_record` gives)."""
        known = set(cls._fields) - {"reached", "extra", "status"}
        reached_names = {reached_attribute(s): s for s in JobStatus}
        values = {k: v for k, v in record.items() if k in known}
        reached = {reached_names[k]: str(v) for k, v in record.items() if k in reached_names}
        extra = {k: v for k, v in record.items() if k not in known and k not in reached_names and k != "status"}
        return cls(status=JobStatus(record["status"]), reached=reached, extra=extra, **values)

    def to_record(self) -> dict[str, Any]:
        """The plain record as the table holds it (absent attributes left out)."""
        out: dict[str, Any] = dict(self.extra)
        for name, value in zip(self._fields, self, strict=True):
            if name not in ("reached", "extra") and value is not None:
                out[name] = value.value if isinstance(value, JobStatus) else value
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
    def previous_project_ids(self) -> frozenset[str]:
        """Magic Hour projects of a retried job's earlier attempts: their late messages must not touch this one."""
        return frozenset(str(h["project_id"]) for h in self.history or () if h.get("project_id"))

    @property
    def created(self) -> datetime:
        """When this attempt started: the upload, or a retry's reopen (what latency and staleness count from)."""
        return parse_time(self.attempt_started_at or self.created_at)

    @property
    def rendering_since(self) -> datetime | None:
        """When Magic Hour first reported the project rendering (poll bounds count from here, not the create)."""
        at = self.reached.get(JobStatus.RENDERING)
        return parse_time(at) if at else None

    @property
    def claimed(self) -> datetime | None:
        return parse_time(self.claimed_at) if self.claimed_at else None
