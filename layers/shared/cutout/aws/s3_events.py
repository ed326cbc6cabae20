"""Every way an upload can reach the submit function, reduced to `ObjectRef`s (or reasons to skip).

Shapes: EventBridge "Object Created" (the deployed path, SQS-wrapped), S3 notifications (direct,
SQS-wrapped or SNS-wrapped, incl. `s3:TestEvent`) and direct EventBridge events.

Keys: S3 notifications (the `Records` shape) URL-encode the key ("red flower.jpg" arrives as "red+flower.jpg";
"Event message structure" in the S3 user guide: "The s3 key provides information about the bucket and object
involved in the event. The object key name value is URL encoded"), so it is decoded exactly once, with
unquote_plus. For EventBridge "Object Created" events AWS documents no encoding ("Amazon S3 event notifications
with EventBridge", "Object Created" detail); a real event published online shows `:` unencoded, and moto sends
keys unencoded. So an EventBridge key is read whichever way it came (`ObjectRef.candidates`): a key holding a
character S3's encoding would have escaped (a space, `:`, `(`, non-ASCII, ...) was not encoded and is used as is;
one that decoding would change (`+`, `%XX`) is looked up as received first, then decoded, and the object whose
ETag and size match the event's is the upload (inspection.py).
"""

# No `from __future__ import annotations` in this module: a NamedTuple turns string annotations into ForwardRefs,
# compiling each one (~12 us a field at cold start; ~0.1 ms here). Forward references are quoted.
import json
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from cutout.domain.models import MAX_KEY_BYTES

# The fields are read from the event's dicts directly, as Powertools' `S3Event` and
# `S3EventBridgeNotificationEvent` read them (same keys, same KeyError/TypeError on a malformed event): importing
# those classes runs `aws_lambda_powertools.utilities.data_classes/__init__`, which imports every event class
# (~18 ms of submit's cold start, 1.19x -> see README Benchmarks) for eight dictionary reads.


# NamedTuples rather than frozen dataclasses: ~0.2 ms each at import instead of ~0.65 (cold start; see job.py).
class ObjectRef(NamedTuple):
    bucket: str
    key: str
    raw_key: str
    etag: str
    version_id: str | None
    size: int | None
    origin: str  # "s3" | "eventbridge"

    @property
    def candidates(self) -> tuple[str, ...]:
        """The keys this event may name, in the order to look them up (module docstring): one, except for an
        EventBridge key that decoding changes and that holds nothing an encoded key could not."""
        if self.origin == "s3" or self.raw_key == self.key:
            return (self.key,)
        return (self.raw_key, self.key)


class Skip(NamedTuple):
    reason: str  # test_event | not_a_create | malformed_event | unrecognised_event
    detail: str = ""


Parsed = ObjectRef | Skip


def parse(doc: object) -> list[Parsed]:
    """Classify one event document (already JSON-decoded)."""
    if not isinstance(doc, dict):
        return [Skip("malformed_event", "event is not a JSON object")]
    if doc.get("Event") == "s3:TestEvent":
        return [Skip("test_event", str(doc.get("Bucket", "")))]
    if doc.get("source") == "aws.s3" and "detail" in doc:
        return [_from_eventbridge(doc)]
    records = doc.get("Records")
    if isinstance(records, list):
        if not records:
            return [Skip("malformed_event", "empty Records")]
        out: list[Parsed] = []
        for record in records:
            out.extend(_from_record(record))
        return out
    return [Skip("unrecognised_event", f"keys: {sorted(doc)[:8]}")]


def parse_text(body: str) -> list[Parsed]:
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return [Skip("malformed_event", "body is not JSON")]
    return parse(doc)


def _from_record(record: Any) -> list[Parsed]:
    if not isinstance(record, dict):
        return [Skip("malformed_event", "record is not an object")]
    source = record.get("eventSource") or record.get("EventSource")
    if source == "aws:sns":
        message = (record.get("Sns") or {}).get("Message")
        return parse_text(message) if isinstance(message, str) else [Skip("malformed_event", "SNS without Message")]
    if source != "aws:s3":
        return [Skip("unrecognised_event", f"eventSource {source!r}")]
    try:
        name = record["eventName"]
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3.get("get_object") or s3["object"]  # IntelligentTiering events name it `get_object`
        raw_key = obj["key"]
        etag = obj.get("eTag") or ""
        version_id = obj.get("versionId")
        size = obj.get("size")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return [Skip("malformed_event", f"S3 record: missing {exc}")]
    if not isinstance(name, str) or not name.startswith("ObjectCreated:"):
        return [Skip("not_a_create", str(name))]
    return [_ref(bucket, raw_key, etag, version_id, size, "s3")]


def _from_eventbridge(doc: dict[str, Any]) -> Parsed:
    if doc.get("detail-type") != "Object Created":
        return Skip("not_a_create", str(doc.get("detail-type")))
    try:
        detail = doc["detail"]
        bucket = detail["bucket"]["name"]
        obj = detail["object"]
        raw_key = obj["key"]
        etag = obj.get("etag") or ""
        version_id = obj.get("version-id")
        size = obj.get("size")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return Skip("malformed_event", f"EventBridge detail: missing {exc}")
    return _ref(bucket, raw_key, etag, version_id, size, "eventbridge")


# What a key encoded as S3 encodes event keys can hold: letters, digits, the marks form encoding leaves alone, '/'
# (left as is in the S3 notifications AWS documents), '+' (a space) and '%' (an escape).
_ENCODED_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.*~/+%")
_HEX = frozenset("0123456789abcdefABCDEF")


def is_unencoded(raw_key: str) -> bool:
    """True when `raw_key` cannot be an encoded key: it holds a character the encoding escapes, or a '%' that does
    not start an escape."""
    if not _ENCODED_ALPHABET.issuperset(raw_key):
        return True
    parts = raw_key.split("%")[1:]
    return any(len(p) < 2 or p[0] not in _HEX or p[1] not in _HEX for p in parts)


def _ref(bucket: Any, raw_key: Any, etag: Any, version_id: Any, size: Any, origin: str) -> Parsed:
    if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str) or not raw_key:
        return Skip("malformed_event", "bucket or key missing")
    key = raw_key if origin == "eventbridge" and is_unencoded(raw_key) else unquote_plus(raw_key)
    try:
        key_bytes = len(key.encode())
    except UnicodeEncodeError:  # a lone surrogate ("\\udc80" in the JSON): no S3 key can hold it
        return Skip("malformed_event", "key is not valid UTF-8")
    if key_bytes > MAX_KEY_BYTES:
        # S3 would answer KeyTooLongError (400) on every read: a forged event, and a retry loop if not caught.
        return Skip("malformed_event", f"key of {key_bytes} bytes exceeds S3's {MAX_KEY_BYTES}")
    return ObjectRef(
        bucket=bucket,
        key=key,
        raw_key=raw_key,
        etag=str(etag or "").strip('"'),
        version_id=version_id if isinstance(version_id, str) and version_id else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        origin=origin,
    )
