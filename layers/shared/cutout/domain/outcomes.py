"""What each use case answers, named: handlers log them and the tests assert them (they compare as strings)."""

# No `from __future__ import annotations` in this module: a NamedTuple turns string annotations into ForwardRefs,
# compiling each one (~12 us a field at cold start; ~0.05 ms here). Forward references are quoted.
from enum import StrEnum
from typing import NamedTuple


class SubmitKind(StrEnum):
    SUBMITTED = "submitted"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    AMBIGUOUS = "ambiguous"
    PARKED = "parked"  # the budget is spent: the upload waits in its queue
    WAITING = "waiting"  # no in-flight slot free (or Magic Hour said 429): the job waits in the table, for free


class SubmitOutcome(NamedTuple):  # not a frozen dataclass: ~0.2 ms at import instead of ~0.65 (see job.py)
    kind: SubmitKind
    reason: str = ""
    job_id: str | None = None
    project_id: str | None = None


class FinalizeOutcome(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_PROJECT = "unknown_project"
    PROJECT_MISMATCH = "project_mismatch"
    PREVIOUS_ATTEMPT = "previous_attempt"  # a project of an attempt since retried: its outcome is in `history`
    ALREADY_FINAL = "already_final"
    LEFT_TO_HOLDER = "left_to_holder"  # another finalizer holds the lease; its own message carries the job on
    PROGRESS = "progress"
    ADOPTED = "adopted"
    COMPLETE = "complete"
    ERROR = "error"  # Magic Hour reported a render error
    CANCELED = "canceled"
    INVALID_OUTPUT = "invalid_output"
    DOWNLOAD_FAILED = "download_failed"


class PollOutcome(StrEnum):
    MALFORMED = "malformed"
    DONE = "done"  # the job is finished already (usually by the webhook)
    NOT_FOUND = "not_found"
    PREVIOUS_ATTEMPT = "previous_attempt"  # a check scheduled for an attempt since retried
    COMPLETION_ENQUEUED = "completion_enqueued"
    RESCHEDULED = "rescheduled"
    TIMED_OUT = "timed_out"


class SweepOutcome(StrEnum):
    AMBIGUOUS = "ambiguous"
    TIMED_OUT = "timed_out"
    COMPLETION_ENQUEUED = "completion_enqueued"
    LATE_COMPLETION_ENQUEUED = "late_completion_enqueued"  # a timed-out job's project finished after all


class WebhookOutcome(StrEnum):
    STARTED = "started"  # image.started applied in place
    ACCEPTED = "accepted"  # enqueued for the finalizer
    IGNORED = "ignored"  # another tool's project or event family
    REPLAYED = "replayed"
    REJECTED = "rejected"  # not authentic / not fresh
    MALFORMED = "malformed"
    ENQUEUE_FAILED = "enqueue_failed"
