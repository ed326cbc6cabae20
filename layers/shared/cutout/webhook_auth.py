"""Magic Hour webhook authentication: HMAC-SHA256 over "{timestamp}.{raw body}", constant-time compare.

Hand-written because no Magic Hour SDK ships a verifier (magichour-api.md §5) and the scheme is four lines;
what matters is verifying the exact raw bytes (never a re-serialised body) and bounding the timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from cutout.errors import WebhookRejected

SIGNATURE_HEADER = "magic-hour-event-signature"
TIMESTAMP_HEADER = "magic-hour-event-timestamp"
TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 256 * 1024


def sign(secret: str, timestamp: str, raw_body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()


def verify(headers: dict[str, str], raw_body: bytes, secret: str, *, now: float | None = None) -> str:
    """Raise WebhookRejected unless the delivery is authentic and fresh. Returns the signature (replay key)."""
    if len(raw_body) > MAX_BODY_BYTES:
        raise WebhookRejected(413, "body too large")
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = (lowered.get(SIGNATURE_HEADER) or "").strip().lower()
    timestamp = (lowered.get(TIMESTAMP_HEADER) or "").strip()
    if not signature or not timestamp:
        raise WebhookRejected(401, "missing signature headers")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise WebhookRejected(401, "malformed timestamp")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > TOLERANCE_SECONDS:
        raise WebhookRejected(401, "timestamp outside the tolerance window")
    expected = sign(secret, timestamp, raw_body)
    if not hmac.compare_digest(expected, signature):
        raise WebhookRejected(401, "bad signature")
    return signature
