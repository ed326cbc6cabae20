"""Feed existing objects to the pipeline: "Object Created" events sent straight to the ingest queue.

`cutout backfill` and `cutout retry` use this instead of copying objects onto themselves: nothing in the bucket is
rewritten (no new version, no new ETag from a multipart re-upload, metadata such as the chosen background kept),
and the submit function sees exactly what the EventBridge rule delivers, so every check, the claim and the spend
guard apply unchanged.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from cutout.domain.models import utc_now

SEND_BATCH = 10  # SendMessageBatch's limit
SEND_ATTEMPTS = 5  # a failed entry is resent this often (throttling, a transient SQS error) before we give up
# Marks the events this tool made (S3 puts the operation here: PutObject, CopyObject, ...). Nothing reads it;
# it tells a person reading a message in the queue or the DLQ where it came from.
REASON = "cutout backfill"


class SendError(RuntimeError):
    """Some events could not be enqueued after retries (what was sent before them stays sent)."""


@dataclass(frozen=True, slots=True)
class S3Object:
    bucket: str
    key: str  # decoded, as S3 stores it
    etag: str
    size: int
    version_id: str | None = None


def encode_key(key: str) -> str:
    """The key as S3 writes it into event notifications: URL-encoded, space as '+', '/' kept.

    The submit decodes it with unquote_plus, the exact inverse, so any key (spaces, '+', '%', unicode,
    parentheses) comes back unchanged.
    """
    return quote_plus(key, safe="/")


def object_created_event(obj: S3Object, *, region: str, account: str = "", reason: str = REASON) -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 would emit for this object (events/eventbridge-object-created.json).

    Not sent through EventBridge (its `aws.s3` source is reserved for S3), but delivered to the same queue in the
    same shape the rule delivers, so the submit cannot tell it from a live upload.
    """
    detail_object: dict[str, Any] = {
        "key": encode_key(obj.key),
        "size": obj.size,
        "etag": obj.etag.strip('"'),
        "sequencer": "0",
    }
    if obj.version_id and obj.version_id != "null":
        detail_object["version-id"] = obj.version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{obj.bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": obj.bucket},
            "object": detail_object,
            "request-id": "",
            "requester": "",
            "reason": reason,
        },
    }


def send_events(sqs: Any, queue_url: str, events: Sequence[dict[str, Any]], *, sleep: Any = time.sleep) -> int:
    """Enqueue up to ten events with one SendMessageBatch; resend the entries SQS reports failed.

    Returns how many were sent (all of them, or SendError). A resend can duplicate a message whose first send
    succeeded without our seeing it; the submit's claim makes a duplicate cost nothing.
    """
    if len(events) > SEND_BATCH:
        raise ValueError(f"at most {SEND_BATCH} events per batch")
    pending = {str(i): json.dumps(event) for i, event in enumerate(events)}
    for attempt in range(SEND_ATTEMPTS):
        if not pending:
            break
        if attempt:
            sleep(min(0.2 * 2**attempt, 5.0))
        resp = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": i, "MessageBody": body} for i, body in pending.items()]
        )
        for ok in resp.get("Successful", []):
            pending.pop(ok["Id"], None)
        failed = resp.get("Failed", [])
        # A sender fault (malformed entry, too large) fails the same way every time: report it now.
        fatal = [f for f in failed if f.get("SenderFault")]
        if fatal:
            raise SendError(f"SQS refused {len(fatal)} event(s): {fatal[0].get('Code')}: {fatal[0].get('Message')}")
    if pending:
        raise SendError(f"{len(pending)} event(s) not enqueued after {SEND_ATTEMPTS} attempts")
    return len(events)


def batches(items: Iterable[Any], size: int = SEND_BATCH) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
