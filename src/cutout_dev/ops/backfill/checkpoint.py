"""The checkpoint a rerun goes on from, and the enqueueing of the events batch by batch."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
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
        cls,
        bucket: str,
        prefix: str,
        manifest: str | None,
        table: str,
        directory: Path = CHECKPOINT_DIR,
        *,
        kind: str = "backfill",
        scope: tuple[str, ...] = (),
    ) -> Checkpoint:
        """The checkpoint of one run over one location: ``kind`` names the command (its file's name), ``scope``
        anything else a rerun must match to go on from it (a rebuild's presets, say)."""
        parts = (table, bucket, prefix, manifest or "", *scope)
        digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
        path = directory / f"{kind}-{digest}.json"
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
    images: Sequence[Listed] | Sequence[Any],
    checkpoint: Checkpoint | None,
    on_batch: Callable[[int, int], None] | None = None,
    *,
    queue_url: str | None = None,
    message: Callable[[Any], dict[str, Any]] | None = None,
) -> int:
    """Send one message per item, in listing order, checkpointing after every batch: by default an Object
    Created event per image to the ingest queue; ``queue_url`` and ``message`` send other messages (a rebuild's
    render requests) for items that have a ``position`` as Listed has.

    KeyboardInterrupt (Ctrl-C) propagates after the checkpoint holds the last batch that was sent."""
    sent = 0

    def created(listed: Any) -> dict[str, Any]:
        return object_created_event(listed.obj, region=pipeline.region)

    for batch in batches(images):
        send_events(pipeline.sqs, queue_url or pipeline.ingest_queue_url, [(message or created)(i) for i in batch])
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
