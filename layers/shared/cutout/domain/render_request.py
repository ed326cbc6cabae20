"""The renditions queue's message: render one complete job's presets (the renditions function only).

Its own module, not messages.py: the paid path's functions import that one at cold start and never read this.
"""

# No `from __future__ import annotations`: a NamedTuple compiles string annotations at import (see job.py).
import json
from enum import StrEnum
from typing import NamedTuple


class RenderRequest(NamedTuple):
    """A message on the renditions queue: render the presets of one complete job. Two shapes lead here: the
    "Cutout Completed" event as the EventBridge rule delivers it (its envelope, `detail.job_id`), and a rebuild
    request `{"cutout": "render", "job_id": ..., "presets": [...] | null}` (`cutout renditions rebuild`).
    `presets` None: whatever the current presets document picks for the job; names: exactly those."""

    job_id: str
    presets: tuple[str, ...] | None = None
    rebuild: bool = False

    def to_json(self) -> str:
        presets = list(self.presets) if self.presets is not None else None
        return json.dumps({"cutout": "render", "job_id": self.job_id, "presets": presets})

    @classmethod
    def from_json(cls, body: str) -> "RenderRequest":
        """Raises ValueError (or KeyError/TypeError) for a body that is neither shape: a message that can never
        be processed."""
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("a render message is a JSON object")
        if doc.get("cutout") == "render":
            presets = doc.get("presets")
            if presets is not None and not (isinstance(presets, list) and all(isinstance(p, str) for p in presets)):
                raise ValueError("presets must be a list of names or null")
            return cls(
                job_id=_job_id(doc.get("job_id")), presets=None if presets is None else tuple(presets), rebuild=True
            )
        if doc.get("source") == "cutout" and doc.get("detail-type") == "Cutout Completed":
            return cls(job_id=_job_id(doc["detail"]["job_id"]))
        raise ValueError(f"not a render request: {str(doc.get('detail-type') or doc.get('cutout'))[:60]!r}")


def _job_id(value: object) -> str:
    if not isinstance(value, str) or len(value) != 32 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("job_id must be 32 lower-case hex characters")
    return value


class RenditionsOutcome(StrEnum):
    MALFORMED = "malformed"
    NO_PRESETS = "no_presets"  # the presets document is empty: nothing to do, nothing spent
    UNKNOWN_JOB = "unknown_job"
    NOT_COMPLETE = "not_complete"  # reopened for a retry since: its next completion brings a new request
    NOTHING_PICKED = "nothing_picked"  # no rule matches and the upload named no preset
    RENDERED = "rendered"  # every picked preset rendered (or recorded as failed, with its reason)
