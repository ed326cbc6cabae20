"""The job record's vocabulary: statuses, their order, and how the job id is derived."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePosixPath


class JobStatus(StrEnum):
    WAITING = "waiting"  # for an in-flight slot (admission.py): visible, costs nothing, not yet at Magic Hour
    SUBMITTING = "submitting"
    QUEUED = "queued"
    RENDERING = "rendering"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELED = "canceled"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    # A failed job an operator reopened (`cutout retry`): waiting for its Object Created event to be claimed again.
    RETRY_PENDING = "retry_pending"


TERMINAL = frozenset({JobStatus.COMPLETE, JobStatus.ERROR, JobStatus.CANCELED, JobStatus.REJECTED, JobStatus.TIMED_OUT})
IN_FLIGHT = frozenset({JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.RENDERING})

# A state only moves forward: an update is applied only when the new rank is higher than the stored one.
# The two exceptions are named transitions of their own (job_store.py): a create refused with 429 puts a job back
# from submitting to waiting, and a late result completes a timed_out job.
RANK: dict[JobStatus, int] = {
    JobStatus.WAITING: -1,
    JobStatus.SUBMITTING: 0,
    JobStatus.QUEUED: 1,
    JobStatus.RENDERING: 2,
    **{status: 3 for status in TERMINAL},
    # Ranked with the terminal states so no forward-only update (e.g. a late message of the previous attempt)
    # can move it; only the claim, whose condition names it explicitly, takes it on to `submitting`.
    JobStatus.RETRY_PENDING: 3,
}
# Failed outcomes an operator may retry (`JobStore.reopen_for_retry`).
RETRYABLE = frozenset({JobStatus.ERROR, JobStatus.TIMED_OUT, JobStatus.CANCELED})

# Whose fault a rejection is. A rejection costs nothing and is final when the file itself is the cause (not an
# image, empty, too large, a key no URL can carry, refused by Magic Hour as invalid): a corrected upload fixes it.
# These codes name a cause outside the file — the stack's configuration (a missing or unusable background) or its
# environment (the object was gone when the submit read it) — which a later fix resolves, so the same upload is
# retryable (`cutout retry`, `cutout backfill`), its record and history kept. docs/operate.md lists both sides.
CONFIGURATION_REJECTIONS = frozenset({"background_invalid", "object_missing"})


def is_retryable(status: JobStatus | str, error_code: str | None) -> bool:
    """Whether an operator may reopen a job with this outcome: a failure, or a rejection not caused by its file."""
    if status in RETRYABLE:
        return True
    return status == JobStatus.REJECTED and error_code in CONFIGURATION_REJECTIONS


def forward_to(status: JobStatus) -> frozenset[JobStatus]:
    """The statuses a job may leave for `status`: those ranked below it (moves only go forward)."""
    return frozenset(s for s, rank in RANK.items() if rank < RANK[status])


# Statuses reported by Magic Hour (GET /v1/image-projects/{id}) mapped onto ours.
MAGIC_HOUR_STATUS: dict[str, JobStatus] = {
    "draft": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "rendering": JobStatus.RENDERING,
    "complete": JobStatus.COMPLETE,
    "error": JobStatus.ERROR,
    "canceled": JobStatus.CANCELED,
}

# Error codes Cutout itself records (Magic Hour's own codes are stored as they come).
CREATE_OUTCOME_UNKNOWN = "create_outcome_unknown"
# Why a `submitting` claim whose lease ran out is an unknown outcome (the submit on redelivery, reconciliation).
DEAD_WORKER_CLAIM = "the worker that claimed this job stopped before recording the create"

PROJECT_NAME_PREFIX = "cutout:"
MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8 bytes
# The most admission slots MAX_JOBS_IN_FLIGHT may ask for: the slots and the limit item (100 keys) are read in one
# BatchGetItem, whose limit is 100 keys.
MAX_SLOTS = 99


def job_id_for(bucket: str, key: str, etag: str) -> str:
    """Deterministic id of one upload: the same bytes at the same key are one job, however often delivered.

    The ETag (content) is used rather than the version id so that re-uploading identical bytes does not
    pay twice; a new version with different content is a new job.
    """
    digest = hashlib.sha256("\0".join((bucket, key, etag.strip('"'))).encode()).hexdigest()
    return digest[:32]


def project_name(job_id: str) -> str:
    return f"{PROJECT_NAME_PREFIX}{job_id}"


def job_id_from_project_name(name: object) -> str | None:
    if isinstance(name, str) and name.startswith(PROJECT_NAME_PREFIX):
        candidate = name[len(PROJECT_NAME_PREFIX) :]
        if len(candidate) == 32 and all(c in "0123456789abcdef" for c in candidate):
            return candidate
    return None


def output_key_for(source_key: str, input_prefix: str, output_prefix: str) -> str:
    """incoming/a/b.jpg → cutouts/a/b.png (the input path mirrored under the output prefix)."""
    relative = source_key[len(input_prefix) :] if source_key.startswith(input_prefix) else source_key
    return output_prefix + str(PurePosixPath(relative).with_suffix(".png"))


def prefix_clash(
    renditions: str, input_prefix: str, output_prefix: str, background_prefix: str, output_elsewhere: bool
) -> str | None:
    """Why the renditions prefix may not be used with these prefixes (or None). Renditions are written in the
    output bucket: never within (or around) the cutouts, and, when that bucket is the images bucket, never within
    the uploads or the backgrounds either, so a rendition is never taken for an upload. An empty input prefix (the
    whole bucket watched) is allowed, as for the cutouts: the submit's skip filter ignores the renditions prefix.
    CloudFormation's Rules can only compare whole values; this is the nested case, checked at deploy (the local
    stack's deploy rules) and at every cold start."""
    if not renditions:
        return None
    others = {"OUTPUT_PREFIX": output_prefix}
    if not output_elsewhere:
        others |= {"INPUT_PREFIX": input_prefix, "BACKGROUND_PREFIX": background_prefix}
    for name, other in others.items():
        if other and (renditions.startswith(other) or other.startswith(renditions)):
            return f"RENDITIONS_PREFIX {renditions!r} overlaps {name} {other!r}: renditions need a prefix of their own"
    return None


def utc_now() -> datetime:
    return datetime.now(UTC)


# Where "now" comes from: `utc_now` in production, an injected one in the soak and tests (never a patched global).
Clock = Callable[[], datetime]


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
