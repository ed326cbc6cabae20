"""Renditions: after the paid path, every preset of a complete job rendered from its stored cutout, for free.

One message (the job's "Cutout Completed" event, or a rebuild request) is one run over one job:

1. the presets document (cached; empty = nothing to do, nothing else read);
2. the job (it must be `complete`: a job reopened since gets a new completion of its own);
3. the original upload's first bytes (one ranged GET): the names it asks for (`x-amz-meta-cutout-presets`) and its
   EXIF orientation and stored size, so the renditions are upright whether or not Magic Hour applied the tag;
4. the stored cutout, read once and decoded once; the judge's flags from that same decoded image;
5. each preset rendered and written under the renditions prefix of the output bucket, with its Content-Type and
   metadata naming the job and the preset;
6. one record of the run on the job (its own attributes, never `status`) and one "Cutout Renditions Ready" event.

A rendition that fails (a corrupt or oversized cutout, a preset that cannot render) is recorded with its reason
and touches neither the cutout nor the other renditions. A redelivered message renders to the same keys and
replaces the same record entries (keyed by preset): no second set. What is not the file's fault (S3 or DynamoDB
refusing, a stored document that does not validate) raises: the message is retried, then dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, NamedTuple

from cutout.aws import aws_clients
from cutout.aws.events_out import RENDITIONS_READY, publish_detail
from cutout.domain.job import Job
from cutout.domain.models import JobStatus, iso
from cutout.domain.render_request import RenderRequest, RenditionsOutcome
from cutout.domain.rendition import FAILED, OK, Rendition
from cutout.renditions.errors import RenditionError
from cutout.renditions.judge import Flag, judge
from cutout.renditions.presets import METADATA_KEY, Preset, PresetDocument, Selection, parse_requested, rendition_key
from cutout.renditions.presets_source import PresetsSource
from cutout.renditions.render import open_cutout, render, source_orientation
from cutout.runtime.observability import bind_job, count, logger, timing

if TYPE_CHECKING:
    from cutout.domain.models import Clock
    from cutout.runtime.config import Settings
    from cutout.store.job_store import JobStore

REASON_LIMIT = 300  # characters of a failure's reason kept on the record
# The original's first bytes: a photo's EXIF (the first APP1 segment, at most 64 KiB) and its frame header, which
# large ICC or XMP segments can push past the first segment.
HEAD_BYTES = 256 * 1024


class Original(NamedTuple):
    """What the renditions need of the ORIGINAL upload (a PNG cutout usually carries no orientation tag)."""

    orientation: int | None = None
    size: tuple[int, int] | None = None


class RenditionsMaker:
    def __init__(self, settings: Settings, store: JobStore, presets: PresetsSource, clock: Clock) -> None:
        self.settings, self.store, self.presets, self.clock = settings, store, presets, clock

    def handle(self, request: RenderRequest) -> RenditionsOutcome:
        document = self.presets.current()
        if document.empty:
            return RenditionsOutcome.NO_PRESETS
        job = self._renderable(request.job_id)
        if not isinstance(job, Job):
            return job
        original, requested = self._original(job)
        selection = self._select(document, job, request, requested)
        if not selection.presets and not selection.unknown:
            return RenditionsOutcome.NOTHING_PICKED
        outcomes, flags = self._render_all(job, selection.presets, original) if selection.presets else ({}, ())
        at = iso(self.clock())
        recorded = self.store.record_renditions(
            job.job_id,
            outcomes,
            at=at,
            flags=[asdict(f) for f in flags],
            requested=requested,
            unknown=selection.unknown,
            first=job.renditions is None,
        )
        if not recorded:
            logger.info("job left `complete` while rendering; its renditions are not recorded")
            return RenditionsOutcome.NOT_COMPLETE
        publish_detail(self.settings.event_bus_name, RENDITIONS_READY, _detail(job, outcomes, flags, selection))
        if selection.unknown:
            count("UnknownPresets", len(selection.unknown))
        if flags:
            count("CutoutsFlagged")
        return RenditionsOutcome.RENDERED

    # ----- what to render ----------------------------------------------------------------------------------------
    def _renderable(self, job_id: str) -> Job | RenditionsOutcome:
        """The job, if its renditions may be made now; otherwise why not."""
        job = self.store.get(job_id)
        if job is None:
            count("RenditionsUnknownJob")
            logger.warning("render request for a job the table does not hold; dropped", extra={"job": job_id})
            return RenditionsOutcome.UNKNOWN_JOB
        bind_job(job_id=job.job_id, source_key=job.source_key)
        if self.settings.source_bucket and job.source_bucket != self.settings.source_bucket:
            logger.warning("render request for a job of another bucket; dropped")
            return RenditionsOutcome.UNKNOWN_JOB
        if job.status != JobStatus.COMPLETE or not job.output_key:
            logger.info("job is not complete (any more); nothing rendered", extra={"status": job.status})
            return RenditionsOutcome.NOT_COMPLETE
        return job

    def _relative_key(self, job: Job) -> str:
        prefix = self.settings.input_prefix
        return job.source_key[len(prefix) :] if job.source_key.startswith(prefix) else job.source_key

    def _select(
        self, document: PresetDocument, job: Job, request: RenderRequest, requested: tuple[str, ...]
    ) -> Selection:
        if request.presets is not None:
            return document.named(request.presets)
        return document.pick(self._relative_key(job), requested)

    def _original(self, job: Job) -> tuple[Original, tuple[str, ...]]:
        """The upload's orientation and size, and the presets it names: one ranged GET of its first bytes, of the
        version the job was made from. An upload deleted (or replaced) since leaves the names recorded by an
        earlier run and no orientation: renditions are still made, from the cutout as stored."""
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {
            "Bucket": job.source_bucket,
            "Key": job.source_key,
            "Range": f"bytes=0-{HEAD_BYTES - 1}",
        }
        if job.source_version_id:
            kwargs["VersionId"] = job.source_version_id
        elif job.source_etag:
            kwargs["IfMatch"] = f'"{job.source_etag}"'
        try:
            resp = aws_clients.s3().get_object(**kwargs)
            head = resp["Body"].read()
        except ClientError as exc:
            # 404 / 412 (gone or replaced), or 403: S3 answers 403 for a missing key to a role without ListBucket,
            # which this one has no need of otherwise.
            count("RenditionsOriginalUnavailable")
            logger.warning(
                "the original upload cannot be read; rendering the cutout as stored",
                extra={"error": exc.response.get("Error", {}).get("Code", "")},
            )
            return Original(), tuple(job.requested_presets or ())
        metadata = {k.lower(): v for k, v in (resp.get("Metadata") or {}).items()}
        return Original(*source_orientation(head)), parse_requested(metadata.get(METADATA_KEY))

    # ----- rendering -------------------------------------------------------------------------------------------
    def _render_all(
        self, job: Job, presets: tuple[Preset, ...], original: Original
    ) -> tuple[dict[str, Rendition], tuple[Flag, ...]]:
        started = time.perf_counter()
        try:
            image = open_cutout(
                self._cutout(job),
                orientation=original.orientation,
                source_size=original.size,
                max_pixels=self.settings.max_rendition_pixels,
            )
        except RenditionError as exc:
            # The cutout itself cannot be rendered: every preset fails with the same reason; nothing is written.
            logger.warning("the cutout cannot be rendered", extra={"code": exc.code, "reason": exc.message[:200]})
            count("RenditionsFailed", len(presets))
            return {p.name: self._failed(exc) for p in presets}, ()
        decoded = time.perf_counter()
        flags = judge(image)
        outcomes = {preset.name: self._one(job, image, preset) for preset in presets}
        timing("RenditionsDecodeTime", (decoded - started) * 1000)
        timing("RenditionsRunTime", (time.perf_counter() - started) * 1000)
        return outcomes, flags

    def _cutout(self, job: Job) -> bytes:
        """The stored cutout, read once (a cutout larger than MAX_OUTPUT_BYTES is refused before reading it)."""
        bucket = job.output_bucket or self.settings.output_bucket_for(job.source_bucket)
        resp = aws_clients.s3().get_object(Bucket=bucket, Key=str(job.output_key))
        size = int(resp.get("ContentLength") or 0)
        if size > self.settings.max_output_bytes:
            resp["Body"].close()
            raise RenditionError("too_large", f"the cutout is {size} bytes, over {self.settings.max_output_bytes}")
        return resp["Body"].read()

    def _one(self, job: Job, image: Any, preset: Preset) -> Rendition:
        """`image`: the decoded cutout (a Pillow image; typed loosely so only renditions/ names the library)."""
        started = time.perf_counter()
        try:
            rendered = render(image, preset)
        except RenditionError as exc:
            logger.warning("rendition failed", extra={"preset": preset.name, "code": exc.code})
            count("RenditionsFailed")
            return self._failed(exc)
        key = rendition_key(self.settings.renditions_prefix, preset, self._relative_key(job))
        aws_clients.s3().put_object(
            Bucket=job.output_bucket or self.settings.output_bucket_for(job.source_bucket),
            Key=key,
            Body=rendered.body,
            ContentType=rendered.content_type,
            Metadata={"cutout-job-id": job.job_id, "cutout-preset": preset.name},
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        count("RenditionsMade")
        timing("RenditionTime", elapsed_ms)
        return Rendition(
            status=OK,
            rendered_at=iso(self.clock()),
            key=key,
            bytes=len(rendered.body),
            content_type=rendered.content_type,
            width=rendered.width,
            height=rendered.height,
        )

    def _failed(self, exc: RenditionError) -> Rendition:
        return Rendition(
            status=FAILED, rendered_at=iso(self.clock()), reason=f"{exc.code}: {exc.message}"[:REASON_LIMIT]
        )


def _detail(
    job: Job, outcomes: Mapping[str, Rendition], flags: tuple[Flag, ...], selection: Selection
) -> dict[str, Any]:
    """The "Cutout Renditions Ready" event's detail (docs/events.md)."""
    return {
        "job_id": job.job_id,
        "source_bucket": job.source_bucket,
        "source_key": job.source_key,
        "output_bucket": job.output_bucket,
        "output_key": job.output_key,
        "renditions": {
            name: {"key": r.key, "bytes": r.bytes, "content_type": r.content_type}
            for name, r in outcomes.items()
            if r.ok
        },
        "failed": {name: r.reason for name, r in outcomes.items() if not r.ok},
        "flags": [asdict(f) for f in flags],
        "unknown_presets": list(selection.unknown),
    }
