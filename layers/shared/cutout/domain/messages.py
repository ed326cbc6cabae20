"""The messages Cutout sends itself over SQS, and how many receives each queue allows.

* CompletionMessage (completion queue): a Magic Hour project reported by the webhook, a poll or the sweeper.
* PollMessage (poll queue): one delayed, bounded status check of a job's project.
* DispatchMessage (ingest queue, beside the S3 events): "a slot may be free: start the oldest waiting jobs".
* RenderRequest (renditions queue, render_request.py): "render this complete job's presets".
"""

# No `from __future__ import annotations` in this module: a NamedTuple turns string annotations into ForwardRefs,
# compiling each one (~12 us a field at cold start; ~0.15 ms here). Forward references are quoted.
import json
from typing import Any, NamedTuple

# Every queue's redrive policy dead-letters a message on this receive (template.yaml `maxReceiveCount`; a
# template test checks they agree). The thresholds below are derived from it so a job ends terminal rather
# than its message in a DLQ.
MAX_RECEIVE_COUNT = 5
# Completion messages for a job not recorded yet (the webhook can beat the submit's DynamoDB write) are retried
# until this receive, then dropped as belonging to no job of ours.
UNKNOWN_JOB_RECEIVES = MAX_RECEIVE_COUNT - 1
# A broken output (not a PNG, too large) is retried with a fresh URL until this receive, then recorded.
INVALID_OUTPUT_RECEIVES = MAX_RECEIVE_COUNT - 2
# A download that keeps failing (5xx, redirect, network) is recorded as failed on this receive.
DOWNLOAD_GIVE_UP_RECEIVES = MAX_RECEIVE_COUNT - 1


# NamedTuples rather than frozen dataclasses: ~0.2 ms each at import instead of ~0.65 (cold start; see job.py).
class CompletionMessage(NamedTuple):
    project: dict[str, Any]
    source: str  # webhook | poll | sweeper
    event_type: str = ""
    job_id: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {"project": self.project, "source": self.source, "event_type": self.event_type, "job_id": self.job_id}
        )

    @classmethod
    def from_json(cls, body: str) -> "CompletionMessage":
        doc = json.loads(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("project"), dict):
            raise ValueError("completion message without a project")
        return cls(
            project=doc["project"],
            source=str(doc.get("source", "")),
            event_type=str(doc.get("event_type", "")),
            job_id=doc.get("job_id") if isinstance(doc.get("job_id"), str) else None,
        )


class PollMessage(NamedTuple):
    """One status check. The bounds count from when Magic Hour reported the project `rendering` (carried here once
    known, with the attempt it was first seen at), not from the create: time in Magic Hour's queue is not a
    render that takes too long, and has its own, more generous bound."""

    job_id: str
    project_id: str
    attempt: int
    first_check_at: str
    rendering_since: str | None = None
    rendering_attempt: int | None = None

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "job_id": self.job_id,
            "project_id": self.project_id,
            "attempt": self.attempt,
            "first_check_at": self.first_check_at,
        }
        if self.rendering_since is not None:
            doc["rendering_since"] = self.rendering_since
            doc["rendering_attempt"] = self.rendering_attempt
        return json.dumps(doc)

    @classmethod
    def from_json(cls, body: str, *, now: str) -> "PollMessage":
        """`now`: the first check's time when the message does not say (the caller's clock)."""
        doc = json.loads(body)
        since = doc.get("rendering_since")
        seen_at = doc.get("rendering_attempt")
        return cls(
            job_id=str(doc["job_id"]),
            project_id=str(doc["project_id"]),
            attempt=int(doc.get("attempt", 1)),
            first_check_at=str(doc.get("first_check_at") or now),
            rendering_since=str(since) if isinstance(since, str) and since else None,
            rendering_attempt=int(seen_at) if isinstance(seen_at, int) and since else None,
        )

    def rendering(self, since: str) -> "PollMessage":
        """This message, knowing the project has been rendering since `since` (first seen at this attempt)."""
        if self.rendering_since is not None:
            return self
        return self._replace(rendering_since=since, rendering_attempt=self.attempt)

    def next(self) -> "PollMessage":
        return self._replace(attempt=self.attempt + 1)


class DispatchMessage(NamedTuple):
    """Sent to the ingest queue by whoever frees an in-flight slot (and by the periodic admission tick), so the
    creates stay in the submit function, under its concurrency cap. No S3 or EventBridge event has a top-level
    `cutout` key, so the submit tells the two apart without guessing."""

    reason: str
    # A job whose create's outcome became unknown: its slot is checked (and freed if still unexplained) first.
    suspect: str | None = None

    def to_json(self) -> str:
        doc = {"cutout": "dispatch", "reason": self.reason}
        if self.suspect:
            doc["suspect"] = self.suspect
        return json.dumps(doc)

    @classmethod
    def from_json(cls, body: str) -> "DispatchMessage | None":
        """The message, or None when `body` is something else (an S3 event)."""
        if '"cutout"' not in body:
            return None  # the common case, decided without parsing
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        if isinstance(doc, dict) and doc.get("cutout") == "dispatch":
            suspect = doc.get("suspect")
            return cls(reason=str(doc.get("reason", "")), suspect=suspect if isinstance(suspect, str) else None)
        return None
