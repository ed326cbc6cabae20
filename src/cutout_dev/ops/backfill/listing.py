"""Where the objects come from: a ListObjectsV2 listing, or an S3 Inventory manifest."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from cutout_dev.ops.backfill.pipeline import (
    BackfillError,
    Pipeline,
    parse_s3_uri,
)
from cutout_dev.ops.ingest import S3Object


# ----- where the objects come from --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Listed:
    obj: S3Object
    position: Any  # where to resume after this object: its key (listing) or [file, row] (inventory)
    storage_class: str = ""


def list_objects(s3: Any, bucket: str, prefix: str, start_after: str | None) -> Iterator[Listed]:
    """Every object under the prefix in key order (ListObjectsV2 pages of 1,000; botocore decodes the keys)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
        for item in page.get("Contents", []):
            obj = S3Object(bucket, item["Key"], str(item.get("ETag", "")).strip('"'), int(item.get("Size", 0)))
            yield Listed(obj, item["Key"], str(item.get("StorageClass") or ""))


def read_manifest(s3: Any, manifest_uri: str, bucket: str, prefix: str, after: list[int] | None) -> Iterator[Listed]:
    """Objects from an S3 Inventory report (manifest.json → CSV or CSV.gz files; `fileSchema` names the columns).

    Inventory CSVs URL-encode keys the way event notifications do; they are decoded once, with unquote_plus.
    Rows up to ``after`` ([file index, row index]) were handled by an earlier run.
    """
    m_bucket, m_key = parse_s3_uri(manifest_uri)
    try:
        manifest = json.loads(s3.get_object(Bucket=m_bucket, Key=m_key)["Body"].read())
        columns = [c.strip() for c in str(manifest["fileSchema"]).split(",")]
        files = [f["key"] for f in manifest["files"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackfillError(f"{manifest_uri} is not an S3 Inventory manifest: {exc}") from exc
    if str(manifest.get("fileFormat", "CSV")).upper() != "CSV":
        raise BackfillError(f"only CSV inventories are read, this one is {manifest.get('fileFormat')}")
    source = str(manifest.get("sourceBucket") or bucket)
    if source != bucket:
        raise BackfillError(f"the inventory lists bucket {source}, not {bucket}")
    files_bucket = str(manifest.get("destinationBucket") or m_bucket).removeprefix("arn:aws:s3:::")
    for file_index, file_key in enumerate(files):
        if after and file_index < after[0]:
            continue
        raw = s3.get_object(Bucket=files_bucket, Key=file_key)["Body"]
        stream: Any = gzip.GzipFile(fileobj=raw) if file_key.endswith(".gz") else raw
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        for row_index, row in enumerate(csv.reader(text)):
            if after and file_index == after[0] and row_index <= after[1]:
                continue
            record = dict(zip(columns, row, strict=False))
            if record.get("IsLatest", "true").lower() == "false" or record.get("IsDeleteMarker", "").lower() == "true":
                continue
            key = unquote_plus(record.get("Key", ""))
            if not key.startswith(prefix):
                continue
            version = record.get("VersionId") or None
            obj = S3Object(bucket, key, record.get("ETag", "").strip('"'), int(record.get("Size") or 0), version)
            yield Listed(obj, [file_index, row_index], record.get("StorageClass", ""))


def source_for(pipeline: Pipeline, bucket: str, prefix: str, manifest: str | None, after: Any) -> Iterator[Listed]:
    if manifest:
        return read_manifest(pipeline.s3, manifest, bucket, prefix, after)
    return list_objects(pipeline.s3, bucket, prefix, after)
