"""The checkpoint a rerun goes on from, and the enqueueing of the events batch by batch."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from cutout.domain.models import iso, utc_now

from cutout_dev.ops.backfill.listing import Listed
from cutout_dev.ops.backfill.pipeline import (
    CHECKPOINT_DIR,
    Pipeline,
)
from cutout_dev.ops.ingest import batches, object_created_event, send_events


# ----- the checkpoint -------------------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """Where a backfill of one location for one stack stopped (`.cutout/backfill-<hash>.json`)."""

    path: Path
    bucket: str
    prefix: str
    manifest: str | None
    table: str
    position: Any = None  # resume after this (a key, or [file, row] of an inventory)
    enqueued: int = 0  # across every run of this backfill
    started_at: str = ""
    updated_at: str = ""
    done: bool = False

    @classmethod
    def for_location(
        cls, bucket: str, prefix: str, manifest: str | None, table: str, directory: Path = CHECKPOINT_DIR
    ) -> Checkpoint:
        digest = hashlib.sha256("\0".join((table, bucket, prefix, manifest or "")).encode()).hexdigest()[:16]
        path = directory / f"backfill-{digest}.json"
        fresh = cls(path, bucket, prefix, manifest, table, started_at=iso(utc_now()))
        if not path.exists():
            return fresh
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, **{k: v for k, v in saved.items() if k in cls.__dataclass_fields__ and k != "path"})
        except (ValueError, TypeError):
            return fresh  # unreadable: start over (safe: existing jobs are skipped anyway)

    @property
    def resumable(self) -> bool:
        return not self.done and self.position is not None

    def restart(self) -> None:
        self.position, self.enqueued, self.done, self.started_at = None, 0, False, iso(utc_now())

    def save(self) -> None:
        """Atomically (write, then rename): a Ctrl-C mid-write never leaves half a checkpoint."""
        self.updated_at = iso(utc_now())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in asdict(self).items() if k != "path"}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)


# ----- enqueue --------------------------------------------------------------------------------------------------
def enqueue(
    pipeline: Pipeline,
    images: list[Listed],
    checkpoint: Checkpoint | None,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """Send one Object Created event per image, in listing order, checkpointing after every batch.

    KeyboardInterrupt (Ctrl-C) propagates after the checkpoint holds the last batch that was sent."""
    sent = 0
    for batch in batches(images):
        events = [object_created_event(listed.obj, region=pipeline.region) for listed in batch]
        send_events(pipeline.sqs, pipeline.ingest_queue_url, events)
        sent += len(batch)
        if checkpoint is not None:
            checkpoint.position = batch[-1].position
            checkpoint.enqueued += len(batch)
            checkpoint.save()
        if on_batch:
            on_batch(sent, len(images))
    return sent


def duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
