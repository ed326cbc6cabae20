"""The submit path: one upload → at most one Magic Hour create, recorded in the jobs table.

Order matters for money: filter → inspect → validate → presign (all free) → claim the job with a
conditional put → reserve budget → create → record. The claim is the only licence to create; a claim that
is found stale (its owner died mid-create) is resolved as an ambiguous create, never re-created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from cutout import aws_clients, secrets
from cutout.completion import schedule_check
from cutout.config import Settings
from cutout.job_store import JobStore, SourceObject
from cutout.magic_hour import (
    AmbiguousCreate,
    ConfigurationError,
    InputRejected,
    MagicHourClient,
    MagicHourError,
)
from cutout.models import (
    CREATE_OUTCOME_UNKNOWN,
    MAX_KEY_BYTES,
    JobStatus,
    job_id_for,
    output_key_for,
    project_name,
    utc_now,
)
from cutout.observability import bind_job, count, logger
from cutout.s3_events import ObjectRef, Skip

# Extensions Magic Hour accepts for images (magichour-api.md §4). The URL it fetches must show one.
IMAGE_EXTENSIONS = frozenset(
    {"png", "jpg", "jpeg", "jfif", "heic", "heif", "webp", "avif", "jp2", "tiff", "tif", "bmp"}
)
# Content types S3 commonly stores for images uploaded without an explicit type.
GENERIC_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
SNIFF_BYTES = 64


class RetryLater(Exception):
    """The message must come back to the queue (nothing was spent, or the outcome is being resolved)."""


class BudgetExhausted(RetryLater):
    pass


class InvalidBackground(ValueError):
    """The background image named for this upload cannot be used."""


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # submitted | duplicate | skipped | rejected | ambiguous
    reason: str = ""
    job_id: str | None = None
    project_id: str | None = None


@dataclass(frozen=True, slots=True)
class Inspected:
    key: str
    etag: str
    version_id: str | None
    size: int
    content_type: str
    head: bytes
    metadata: dict[str, str]


def sniff_image(head: bytes) -> str | None:
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


class Submitter:
    def __init__(self, settings: Settings, store: JobStore | None = None) -> None:
        self.settings = settings
        self.store = store or JobStore(settings.jobs_table)
        self._client: MagicHourClient | None = None

    # ----- collaborators ------------------------------------------------------------------------------
    def magic_hour(self, *, refresh: bool = False) -> MagicHourClient:
        if self._client is None or refresh:
            key = secrets.api_key(self.settings.api_key_secret_id, force=refresh)
            self._client = MagicHourClient(self.settings.magic_hour_base_url, key)
        return self._client

    # ----- filters (free, no record) ----------------------------------------------------------------
    def skip_reason(self, ref: ObjectRef) -> str | None:
        s = self.settings
        if s.source_bucket and ref.bucket != s.source_bucket:
            return "wrong_bucket"
        if ref.key.endswith("/"):
            return "folder_marker"
        if not ref.key.startswith(s.input_prefix):
            return "outside_input_prefix"
        # Recursion guard: our own output must never become input, whatever the trigger's filter says.
        if ref.bucket == s.output_bucket_for(ref.bucket) and s.output_prefix and ref.key.startswith(s.output_prefix):
            return "output_prefix"
        return None

    # ----- the whole path for one object ------------------------------------------------------------
    def submit(self, ref: ObjectRef | Skip) -> Outcome:
        if isinstance(ref, Skip):
            count(f"Skipped_{ref.reason}")
            logger.info("event skipped", extra={"skip_reason": ref.reason, "detail": ref.detail})
            return Outcome("skipped", ref.reason)
        bind_job(source_key=ref.key)
        reason = self.skip_reason(ref)
        if reason:
            count("Skipped")
            logger.info("object skipped", extra={"skip_reason": reason, "bucket": ref.bucket})
            return Outcome("skipped", reason)

        inspected = self._inspect(ref)
        if isinstance(inspected, Outcome):
            return inspected
        job_id = job_id_for(ref.bucket, inspected.key, inspected.etag)
        bind_job(job_id=job_id, source_key=inspected.key)
        source = SourceObject(
            bucket=ref.bucket,
            key=inspected.key,
            etag=inspected.etag,
            version_id=inspected.version_id,
            size=inspected.size,
            background_key=self._background_key(inspected),
        )
        problem = self.validate(inspected)
        if problem:
            return self._reject(job_id, source, *problem)
        if self.settings.asset_transfer == "upload":
            # Uploading the bytes to Magic Hour is real work: a redelivery should not repeat it for a job that
            # exists already (presigning is free, so the presign mode relies on the claim alone).
            existing = self.store.get(job_id)
            if existing is not None and existing.get("status") != JobStatus.RETRY_PENDING:  # a retry goes on
                return self._already_claimed(job_id, existing)
        try:
            image_url, background_url = self._assets(source)
        except InvalidBackground as exc:
            return self._reject(job_id, source, "background_invalid", str(exc))
        return self._claim_and_create(job_id, source, image_url, background_url)

    # ----- inspect: one ranged GET gives existence, size, type, metadata and magic bytes -------------
    def _inspect(self, ref: ObjectRef) -> Inspected | Outcome:
        candidates = [ref.key] if ref.raw_key == ref.key else [ref.key, ref.raw_key]
        for key in candidates:
            found = self._ranged_get(ref, key)
            if found is not None:
                return found
        job_id = job_id_for(ref.bucket, ref.key, ref.etag or "missing")
        bind_job(job_id=job_id)
        source = SourceObject(ref.bucket, ref.key, ref.etag, ref.version_id, ref.size)
        return self._reject(job_id, source, "object_missing", "the object no longer exists (deleted before processing)")

    def _ranged_get(self, ref: ObjectRef, key: str) -> Inspected | None:
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

    def validate(self, obj: Inspected) -> tuple[str, str] | None:
        """(code, message) of the first check the upload fails, or None. `cutout backfill` calls it with what a
        listing knows (no content type, no head bytes: those checks then wait for the submit's own GET)."""
        ext = extension_of(obj.key)
        if ext not in IMAGE_EXTENSIONS:
            return (
                "unsupported_extension",
                f"extension {ext or '(none)'!r} is not an image type Magic Hour accepts",
            )
        if obj.size <= 0:
            return "empty_object", "the object is empty (0 bytes)"
        if obj.size > self.settings.max_input_bytes:
            return "too_large", f"{obj.size} bytes exceeds the limit of {self.settings.max_input_bytes}"
        out_key = output_key_for(obj.key, self.settings.input_prefix, self.settings.output_prefix)
        if len(out_key.encode()) > MAX_KEY_BYTES:
            return "output_key_too_long", f"the cutout's key would exceed S3's {MAX_KEY_BYTES}-byte limit"
        ctype = obj.content_type
        if ctype and ctype not in GENERIC_CONTENT_TYPES and not ctype.startswith("image/"):
            return "not_an_image", f"content type {ctype!r} is not an image"
        if obj.head and sniff_image(obj.head) is None and ext not in ("avif", "heic", "heif"):
            return "not_an_image", "the bytes are not a recognised image format"
        return None

    def _background_key(self, obj: Inspected) -> str | None:
        key = obj.metadata.get("background-key") or self.settings.default_background_key
        return key.lstrip("/") if key else None

    # ----- asset URLs ----------------------------------------------------------------------------------
    def _assets(self, source: SourceObject) -> tuple[str, str | None]:
        background = None
        if source.background_key:
            key = source.background_key
            if key != self.settings.default_background_key and not key.startswith(self.settings.background_prefix):
                raise InvalidBackground(f"background {key!r} is not under {self.settings.background_prefix!r}")
            if extension_of(source.background_key) not in IMAGE_EXTENSIONS:
                raise InvalidBackground(f"background {source.background_key!r} has no image extension")
            if not self._exists(source.bucket, source.background_key):
                raise InvalidBackground(f"background {source.background_key!r} does not exist")
            background = self._asset_url(source.bucket, source.background_key, None)
        return self._asset_url(source.bucket, source.key, source.version_id), background

    def _exists(self, bucket: str, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            aws_clients.s3().head_object(Bucket=bucket, Key=key)
        except ClientError:
            return False
        return True

    def _asset_url(self, bucket: str, key: str, version_id: str | None) -> str:
        if self.settings.asset_transfer == "upload":
            # Magic Hour cannot reach this bucket (loopback, or a policy forbidding presigned access):
            # hand it the bytes through its own upload URL instead.
            params: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version_id:
                params["VersionId"] = version_id
            data = aws_clients.s3().get_object(**params)["Body"].read()
            return self.magic_hour().upload_asset(data, extension_of(key))
        params = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        # The key (with its extension) stays in the URL path, which is what Magic Hour needs to see.
        return aws_clients.s3().generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.settings.presign_expires_seconds
        )

    # ----- money ---------------------------------------------------------------------------------------
    def _claim_and_create(
        self, job_id: str, source: SourceObject, image_url: str, background_url: str | None
    ) -> Outcome:
        claim = self.store.claim(job_id, source)
        if not claim.won:
            return self._already_claimed(job_id, claim.existing)
        budget_day = self._reserve_budget(job_id, claim.token)
        try:
            created = self.magic_hour().create(image_url, name=project_name(job_id), background_url=background_url)
        except InputRejected as exc:
            self._release_budget(budget_day)
            self.store.advance(
                job_id,
                JobStatus.REJECTED,
                attrs={"error_code": exc.code, "error_message": str(exc)[:1000]},
                remove=("claim_token",),
            )
            count("Rejected")
            logger.warning("Magic Hour rejected the input", extra={"error_code": exc.code, "status": exc.status})
            return Outcome("rejected", exc.code, job_id)
        except AmbiguousCreate as exc:
            return self._mark_ambiguous(job_id, str(exc))
        except MagicHourError as exc:
            # Provably not created (or refused for configuration/billing): give the job back to the queue.
            self.store.release_claim(job_id, claim.token)
            self._release_budget(budget_day)
            count(f"CreateFailed_{type(exc).__name__}")
            if isinstance(exc, ConfigurationError) and exc.status == 401:
                self._client = None  # re-read the key next time: it may have been rotated
            logger.error(
                "create not performed; message returns to the queue",
                extra={"error": type(exc).__name__, "status": exc.status, "error_code": exc.code},
            )
            raise RetryLater(f"{type(exc).__name__}: {exc}") from None
        except secrets.SecretUnavailable:
            self.store.release_claim(job_id, claim.token)
            self._release_budget(budget_day)
            raise

        bind_job(project_id=created.project_id)
        try:
            self.store.record_created(job_id, claim.token, created.project_id, created.credits_charged)
        except Exception:
            # The create happened and we could not record it: say so loudly with the project id so a human
            # (or the webhook, which carries the job id in the project name) can tie them together.
            logger.exception("created at Magic Hour but could not record it", extra={"project_id": created.project_id})
            raise
        count("Submitted")
        count("CreditsCharged", created.credits_charged)
        logger.info("job submitted", extra={"credits_charged": created.credits_charged})
        self._schedule_first_poll(job_id, created.project_id)
        return Outcome("submitted", "", job_id, created.project_id)

    def _already_claimed(self, job_id: str, existing: dict[str, Any] | None) -> Outcome:
        status = JobStatus(existing["status"]) if existing else None
        if status == JobStatus.SUBMITTING and existing is not None:
            claimed_at = datetime.fromisoformat(str(existing.get("claimed_at", "")).replace("Z", "+00:00"))
            if utc_now() - claimed_at < timedelta(seconds=self.settings.submit_lease_seconds):
                # Another worker is creating this very job right now: come back later and see how it went.
                count("DuplicatesInFlight")
                logger.info("duplicate delivery while the first is in flight; retrying later")
                raise RetryLater("job is being submitted by another worker")
            return self._mark_ambiguous(job_id, "the worker that claimed this job stopped before recording the create")
        count("Duplicates")
        logger.info("duplicate delivery; job already exists", extra={"existing_status": status})
        return Outcome("duplicate", str(status), job_id)

    def _mark_ambiguous(self, job_id: str, why: str) -> Outcome:
        self.store.advance(
            job_id,
            JobStatus.ERROR,
            attrs={"error_code": CREATE_OUTCOME_UNKNOWN, "error_message": why[:1000], "ambiguous": True},
            remove=("claim_token",),
        )
        count("AmbiguousCreates")
        logger.error("create outcome unknown; not retried (no idempotency key at Magic Hour)", extra={"why": why})
        return Outcome("ambiguous", why, job_id)

    def _reserve_budget(self, job_id: str, token: str) -> str | None:
        budget = self.settings.daily_credit_budget
        if budget <= 0:
            return None
        day = utc_now().strftime("%Y-%m-%d")
        counter = f"budget#{day}"
        if not self.store.counter_add(counter, 5, budget, utc_now() + timedelta(days=3)):
            self.store.release_claim(job_id, token)
            count("BudgetExhausted")
            logger.warning("daily credit budget reached; upload waits in the queue", extra={"budget": budget})
            raise BudgetExhausted(f"daily credit budget of {budget} reached")
        return counter

    def _release_budget(self, counter: str | None) -> None:
        if counter:
            self.store.counter_add(counter, -5, 0, utc_now() + timedelta(days=3))

    def _schedule_first_poll(self, job_id: str, project_id: str) -> None:
        try:
            schedule_check(self.settings, job_id, project_id)
        except Exception:
            # The job is recorded and the webhook may still complete it; the sweeper catches it otherwise.
            count("PollScheduleFailed")
            logger.exception("could not schedule the first status check")

    def _reject(self, job_id: str, source: SourceObject, code: str, message: str) -> Outcome:
        bind_job(job_id=job_id)
        self.store.put_rejected(job_id, source, code, message)
        count("Rejected")
        logger.warning("upload rejected", extra={"error_code": code, "error_message": message})
        return Outcome("rejected", code, job_id)


__all__ = ["BudgetExhausted", "Outcome", "RetryLater", "Submitter", "sniff_image"]
