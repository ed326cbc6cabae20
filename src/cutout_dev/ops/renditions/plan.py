"""What a rebuild re-renders: the completed jobs of the uploads under a prefix, each with the presets the current
document picks for it; the estimate (cutouts, renditions per preset, and no Magic Hour credit at all)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from cutout.aws.inspection import skip_reason
from cutout.aws.s3_events import ObjectRef
from cutout.domain.models import job_id_for
from cutout.renditions.presets import METADATA_KEY, PresetDocument, parse_requested

from cutout_dev.ops.backfill import BATCH_GET, Listed, Pipeline, job_records
from cutout_dev.ops.records import deserialize
from cutout_dev.ops.target import TargetError

# What a rebuild reads of each record: whether it has a cutout, and the presets its upload asked for by name.
RECORD_FIELDS = ("status", "source_key", "output_key", "requested_presets")
REQUEST_KIND = "render"  # the renditions queue's rebuild request: {"cutout": "render", "job_id", "presets"}


def key_prefix(input_prefix: str, given: str) -> str:
    """The key prefix a location names: relative to the input prefix, as every command's prefix is; a value that
    already starts with the input prefix is taken as it is."""
    if not input_prefix or given.startswith(input_prefix):
        return given
    return input_prefix + given


@dataclass(frozen=True)
class Candidate:
    """One cutout to re-render: its job, the upload's key under the input prefix, the presets for it."""

    job_id: str
    position: str  # the upload's key: where a rerun goes on after this one (ListObjectsV2's StartAfter)
    relative_key: str
    presets: tuple[str, ...]

    def message(self, named: bool) -> dict[str, Any]:
        """The rebuild request; ``presets`` null = whatever the current document picks for the job."""
        return {"cutout": REQUEST_KIND, "job_id": self.job_id, "presets": list(self.presets) if named else None}


@dataclass
class RebuildPlan:
    bucket: str
    prefix: str  # the key prefix listed (input prefix included)
    resumed_from: str | None = None
    objects: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # why a listed object is not re-rendered
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def by_preset(self) -> Counter[str]:
        return Counter(name for c in self.candidates for name in c.presets)

    @property
    def renditions(self) -> int:
        return sum(len(c.presets) for c in self.candidates)


class Planner:
    """Turns listed uploads into candidates: the job each one is (its id from bucket, key and ETag, as the submit
    derives it), whether that job has a cutout, and which presets the document picks for it."""

    def __init__(
        self,
        pipeline: Pipeline,
        document: PresetDocument,
        only: Sequence[str] = (),
        *,
        renditions_prefix: str = "renditions/",
        requested: Callable[[dict[str, Any]], tuple[str, ...]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.document = document
        self.only = tuple(only)
        self.settings = pipeline.settings()
        self.renditions_prefix = renditions_prefix
        self.requested = requested or self._requested

    def skip(self, listed: Listed) -> str | None:
        """Why a listed object is no upload at all (the submit's own skip rules, and the renditions' prefix): its
        record is not even read. Only skips, not the submit's checks of the file: a job that completed is
        re-rendered even if a limit changed since."""
        obj = listed.obj
        if obj.bucket == self.settings.output_bucket_for(obj.bucket) and obj.key.startswith(self.renditions_prefix):
            return "renditions_prefix"
        return skip_reason(
            ObjectRef(obj.bucket, obj.key, obj.key, obj.etag, obj.version_id, obj.size, ""), self.settings
        )

    def presets_for(self, record: dict[str, Any], relative_key: str) -> tuple[str, ...]:
        """The presets the document picks for this job (rules on its key, then the names its upload asked for),
        narrowed to ``--preset`` when given: a rebuild never makes a rendition the document would not."""
        picked = self.document.pick(relative_key, self.requested(record)).names
        return tuple(n for n in picked if n in self.only) if self.only else picked

    def page(self, plan: RebuildPlan, page: list[Listed]) -> None:
        ids = [job_id_for(i.obj.bucket, i.obj.key, i.obj.etag) for i in page]
        records = job_records(self.pipeline.dynamodb, self.pipeline.table, ids, RECORD_FIELDS)
        for listed, job_id in zip(page, ids, strict=True):
            item = records.get(job_id)
            record = deserialize(item) if item else None
            if record is None:
                plan.skipped["not_a_job"] += 1
            elif record.get("status") != "complete" or not record.get("output_key"):
                plan.skipped["no_cutout"] += 1  # not complete (yet): its renditions come when it completes
            else:
                relative = listed.obj.key.removeprefix(self.pipeline.input_prefix)
                presets = self.presets_for(record, relative)
                if presets:
                    plan.candidates.append(Candidate(job_id, listed.obj.key, relative, presets))
                else:
                    plan.skipped["no_preset_applies"] += 1

    def _requested(self, record: dict[str, Any]) -> tuple[str, ...]:
        """The preset names the upload asked for (``x-amz-meta-cutout-presets``): as the renditions step recorded
        them, or, for a job it never rendered (completed before there were presets), from the upload itself."""
        value = record.get("requested_presets")
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        try:
            head = self.pipeline.s3.head_object(Bucket=self.pipeline.bucket, Key=str(record.get("source_key")))
        except ClientError:
            return ()  # deleted since: the renditions step renders by the rules alone then, too
        return parse_requested(head.get("Metadata", {}).get(METADATA_KEY))


def make_plan(
    planner: Planner,
    source: Iterator[Listed],
    *,
    bucket: str,
    prefix: str,
    resumed_from: str | None = None,
    on_listed: Callable[[int], None] | None = None,
) -> RebuildPlan:
    """The listing, a page of BatchGetItem (100 keys) at a time, into the plan."""
    plan = RebuildPlan(bucket, prefix, resumed_from)
    page: list[Listed] = []
    for listed in source:
        plan.objects += 1
        reason = planner.skip(listed)
        if reason:
            plan.skipped[reason] += 1  # never an upload: no job, no cutout
        else:
            page.append(listed)
            if len(page) >= BATCH_GET:
                planner.page(plan, page)
                page.clear()
        if on_listed and plan.objects % 100 == 0:
            on_listed(plan.objects)
    if page:
        planner.page(plan, page)
    if on_listed:
        on_listed(plan.objects)
    return plan


def check_names(document: PresetDocument, names: Sequence[str]) -> tuple[str, ...]:
    """``--preset`` names (repeated, or comma-separated) the stored document defines; TargetError otherwise."""
    wanted = tuple(dict.fromkeys(n.strip() for given in names for n in given.split(",") if n.strip()))
    unknown = document.named(wanted).unknown
    if unknown:
        defined = ", ".join(document.presets) or "none"
        raise TargetError(f"--preset {', '.join(unknown)}: not in the stored presets (defined: {defined})")
    return wanted
