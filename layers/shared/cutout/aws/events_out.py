"""Outbound integration events on EventBridge: "Cutout Completed", "Cutout Failed" and "Cutout Renditions Ready"
(schema in docs/events.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cutout.aws import aws_clients
from cutout.runtime.observability import count, logger

if TYPE_CHECKING:
    from cutout.domain.job import Job

SOURCE = "cutout"
COMPLETED = "Cutout Completed"
FAILED = "Cutout Failed"
RENDITIONS_READY = "Cutout Renditions Ready"

_FIELDS = (
    "job_id",
    "status",
    "source_bucket",
    "source_key",
    "source_etag",
    "project_id",
    "credits_charged",
    "credits_refunded",
    "output_bucket",
    "output_key",
    "error_code",
    "error_message",
    "created_at",
    "completed_at",
    "updated_at",
    # A result that arrived after the job had timed out, and completed it (late=true, and when it timed out).
    "late",
    "late_after_timeout_at",
)


def detail_of(job: Job) -> dict[str, Any]:
    record = job.to_record()
    return {k: record[k] for k in _FIELDS if record.get(k) is not None}


def publish(bus: str, detail_type: str, job: Job) -> None:
    """Best effort after the record is final: the table stays the source of truth, so a failed publish is
    counted and logged rather than undoing a finished job."""
    publish_detail(bus, detail_type, detail_of(job))


def publish_detail(bus: str, detail_type: str, detail: dict[str, Any]) -> None:
    """`publish` with a detail of the caller's making (the renditions step's), best effort as well."""
    try:
        resp = aws_clients.events().put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": bus,
                }
            ]
        )
        if resp.get("FailedEntryCount"):
            raise RuntimeError(str(resp.get("Entries")))
    except Exception:
        count("EventPublishFailed")
        logger.exception("could not publish event", extra={"detail_type": detail_type})
        return
    count("EventsPublished")
