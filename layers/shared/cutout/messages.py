"""The messages Cutout sends itself over SQS, and how many receives each queue allows.

* CompletionMessage (completion queue): a Magic Hour project reported by the webhook, a poll or the sweeper.
* PollMessage (poll queue): one delayed, bounded status check of a job's project.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class CompletionMessage:
    project: dict[str, Any]
    source: str  # webhook | poll | sweeper
    event_type: str = ""
    job_id: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {"project": self.project, "source": self.source, "event_type": self.event_type, "job_id": self.job_id}
        )

    @classmethod
    def from_json(cls, body: str) -> CompletionMessage:
        doc = json.loads(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("project"), dict):
            raise ValueError("completion message without a project")
        return cls(
            project=doc["project"],
            source=str(doc.get("source", "")),
            event_type=str(doc.get("event_type", "")),
            job_id=doc.get("job_id") if isinstance(doc.get("job_id"), str) else None,
        )


@dataclass(frozen=True, slots=True)
class PollMessage:
    job_id: str
    project_id: str
    attempt: int
    first_check_at: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "job_id": self.job_id,
                "project_id": self.project_id,
                "attempt": self.attempt,
                "first_check_at": self.first_check_at,
            }
        )

    @classmethod
    def from_json(cls, body: str, *, now: str) -> PollMessage:
        """`now`: the first check's time when the message does not say (the caller's clock)."""
        doc = json.loads(body)
        return cls(
            job_id=str(doc["job_id"]),
            project_id=str(doc["project_id"]),
            attempt=int(doc.get("attempt", 1)),
            first_check_at=str(doc.get("first_check_at") or now),
        )

    def next(self) -> PollMessage:
        return PollMessage(self.job_id, self.project_id, self.attempt + 1, self.first_check_at)
