"""Look at an upload before any money is at stake: one ranged GET gives existence, size, type, metadata and the
magic bytes; `problem` then names why it cannot be submitted (or None)."""

# No `from __future__ import annotations` in this module: a NamedTuple turns string annotations into ForwardRefs,
# compiling each one (~12 us a field at cold start; ~0.1 ms here). Forward references are quoted.
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from cutout.aws import aws_clients
from cutout.aws.s3_events import ObjectRef
from cutout.domain.models import MAX_KEY_BYTES, output_key_for
from cutout.runtime.config import Settings

# Extensions Magic Hour accepts for images (Magic Hour's API reference, image assets). The URL it fetches must show one.
IMAGE_EXTENSIONS = frozenset(
    {"png", "jpg", "jpeg", "jfif", "heic", "heif", "webp", "avif", "jp2", "tiff", "tif", "bmp"}
)
# Content types S3 commonly stores for images uploaded without an explicit type.
GENERIC_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# Formats whose container the sniffer does not know (ISO BMFF brands vary): their extension is trusted.
UNSNIFFED_EXTENSIONS = frozenset({"avif", "heic", "heif"})
SNIFF_BYTES = 64


class Inspected(NamedTuple):  # not a frozen dataclass: ~0.2 ms at import instead of ~0.65 (see job.py)
    key: str
    etag: str
    version_id: str | None
    size: int
    content_type: str
    head: bytes
    metadata: dict[str, str]


# One return per format: a table of magic bytes, read top to bottom.
def sniff_image(head: bytes) -> str | None:  # noqa: PLR0911
    """Name the image format from its magic bytes, or None. Cheap insurance against paying for a PDF.jpg."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif", b"avis"):
        return "heif"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xff\x4f\xff\x51"):
        return "jp2"
    return None


def extension_of(key: str) -> str:
    return PurePosixPath(key).suffix.lower().lstrip(".")


def inspect_upload(ref: ObjectRef, candidates: Sequence[str] | None = None) -> Inspected | None:
    """The object the event names, as stored now, or None when no candidate key exists (s3_events.py says which
    keys an event may name). Of two candidates the one whose ETag (and size) match the event's is the upload; when
    neither matches (the key was overwritten since), the first that exists, as a single candidate is used whatever
    it holds now.

    A missing key is S3's 404 (NoSuchKey): S3 answers 404 only to a caller allowed `s3:ListBucket` on the bucket,
    and 403 AccessDenied otherwise (GetObject API reference, "Permissions"), which is why the submit role has
    ListBucket. Any other error, a 403 included, is a real failure (KMS, a bucket policy) and raises: the record is
    retried, then dead-lettered, redrivable once fixed; never read as "missing"."""
    found: list[Inspected] = []
    for key in candidates if candidates is not None else ref.candidates:
        inspected = _ranged_get(ref, key)
        if inspected is None:
            continue  # 404: not this key
        if _matches(inspected, ref):
            return inspected
        found.append(inspected)
    return found[0] if found else None


def _matches(obj: Inspected, ref: ObjectRef) -> bool:
    """The object is the one the event announced (same ETag, and same size when the event gives one)."""
    return (not ref.etag or obj.etag == ref.etag) and (ref.size is None or obj.size == ref.size)


def _ranged_get(ref: ObjectRef, key: str) -> Inspected | None:
    """One ranged GET of `key`: what S3 holds there, or None on 404 (no such key, or no such version)."""
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": key, "Range": f"bytes=0-{SNIFF_BYTES - 1}"}
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    try:
        resp = aws_clients.s3().get_object(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "NoSuchVersion", "404") or status == 404:
            return None
        if code == "InvalidRange" or status == 416:
            # Only an empty object cannot satisfy bytes=0-63.
            return Inspected(key, ref.etag, ref.version_id, 0, "", b"", {})
        raise
    body = resp["Body"].read()
    size = resp.get("ContentLength", len(body))
    content_range = resp.get("ContentRange") or ""
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        size = int(content_range.rsplit("/", 1)[1])
    return Inspected(
        key=key,
        etag=str(resp.get("ETag") or ref.etag).strip('"'),
        version_id=resp.get("VersionId") if resp.get("VersionId") not in (None, "null") else ref.version_id,
        size=int(size),
        content_type=str(resp.get("ContentType") or "").split(";")[0].strip().lower(),
        head=body,
        metadata={k.lower(): v for k, v in (resp.get("Metadata") or {}).items()},
    )


def skip_reason(ref: ObjectRef, settings: Settings) -> str | None:
    """Why an event's object is not ours to process (free, no record is written), or None when it is. A plain
    function of the settings, so a backfill filters its listing exactly as the submit does without building one."""
    if settings.source_bucket and ref.bucket != settings.source_bucket:
        return "wrong_bucket"
    if ref.key.endswith("/"):
        return "folder_marker"
    if not ref.key.startswith(settings.input_prefix):
        return "outside_input_prefix"
    # Recursion guard: our own output must never become input, whatever the trigger's filter says.
    output_bucket = settings.output_bucket_for(ref.bucket)
    if ref.bucket == output_bucket and settings.output_prefix and ref.key.startswith(settings.output_prefix):
        return "output_prefix"
    return _stack_owned(ref, settings, output_bucket)


def _stack_owned(ref: ObjectRef, settings: Settings, output_bucket: str) -> str | None:
    # What the stack keeps for itself (backgrounds) is never an upload: with an empty input prefix a background
    # would otherwise be cut out, 5 credits each, whatever the ingest rule lets through.
    if ref.key.startswith(settings.stack_owned_prefixes()) or ref.key in settings.stack_owned_keys():
        return "stack_owned"
    # ... nor our renditions (written beside the cutouts, in the output bucket).
    if ref.bucket == output_bucket and settings.renditions_prefix and ref.key.startswith(settings.renditions_prefix):
        return "renditions_prefix"
    return None


# One return per rule, in the order a reader checks an upload: the first failed rule is the recorded reason.
def problem(obj: Inspected, settings: Settings) -> tuple[str, str] | None:  # noqa: PLR0911
    """(error code, message) when the upload cannot become a cutout; None when it may be submitted."""
    ext = extension_of(obj.key)
    if ext not in IMAGE_EXTENSIONS:
        return "unsupported_extension", f"extension {ext or '(none)'!r} is not an image type Magic Hour accepts"
    if obj.size <= 0:
        return "empty_object", "the object is empty (0 bytes)"
    if obj.size > settings.max_input_bytes:
        return "too_large", f"{obj.size} bytes exceeds the limit of {settings.max_input_bytes}"
    out_key = output_key_for(obj.key, settings.input_prefix, settings.output_prefix)
    if len(out_key.encode()) > MAX_KEY_BYTES:
        return "output_key_too_long", f"the cutout's key would exceed S3's {MAX_KEY_BYTES}-byte limit"
    ctype = obj.content_type
    if ctype and ctype not in GENERIC_CONTENT_TYPES and not ctype.startswith("image/"):
        return "not_an_image", f"content type {ctype!r} is not an image"
    if obj.head and sniff_image(obj.head) is None and ext not in UNSNIFFED_EXTENSIONS:
        return "not_an_image", "the bytes are not a recognised image format"
    return None


def background_key(obj: Inspected, settings: Settings) -> str | None:
    """The background named in the upload's metadata, or the stack's default."""
    key = obj.metadata.get("background-key") or settings.default_background_key
    return key.lstrip("/") if key else None
