"""``cutout upload FILE... [--prefix P] [--background KEY] [--force]`` — put images where the stack watches, without
the AWS CLI.

The local stack (found like every ops command) or a deployed one (``--stack NAME``): each file goes to the
stack's bucket under its input prefix (plus ``--prefix``, which means what it means in ``jobs``, ``backfill`` and
``retry``: relative to the input prefix), named as the file is. One line per file says the key and the job id the
pipeline derives for it (bucket, key, and the ETag S3 answered: follow it with ``cutout job ID``).

Before anything is uploaded each file is checked as the submit will check it (the domain's own rules: key shape,
extension, empty, larger than the stack's MaxInputBytes, content type and magic bytes): a file the pipeline would
certainly reject is refused, one line each, and nothing is uploaded, unless ``--force``.
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from cutout.aws.inspection import IMAGE_EXTENSIONS, SNIFF_BYTES, Inspected, extension_of, problem
from cutout.domain.models import job_id_for
from cutout.runtime.config import Settings

from cutout_dev.ops.backfill.pipeline import Pipeline
from cutout_dev.ops.output import EXIT_ERROR, EXIT_OK, Output
from cutout_dev.ops.target import StackTarget, TargetError

DEFAULT_BACKGROUND_PREFIX = "backgrounds/"  # the template's BackgroundPrefix default


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "upload",
        help="upload images into the stack's input prefix (no AWS CLI needed)",
        description=(
            "Upload files to the stack's bucket under its input prefix; prints each key and its job id. Files the "
            "pipeline would reject (empty, too large, not an image, no image extension) are refused first."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="image files")
    parser.add_argument(
        "--prefix", default="", metavar="P", help="folder under the input prefix, e.g. shop/ (default none)"
    )
    parser.add_argument(
        "--background",
        metavar="KEY",
        help="background image for these files: an object key under the stack's BackgroundPrefix (backgrounds/...)",
    )
    parser.add_argument("--force", action="store_true", help="upload files the pipeline will reject anyway")
    parser.set_defaults(run=run)


def key_for(target: StackTarget, path: Path, prefix: str) -> str:
    """``<input prefix><prefix><file name>``: a prefix given without its ``/`` still names a folder."""
    folder = target.key_prefix(prefix)
    if folder and not folder.endswith("/"):
        folder += "/"
    return f"{folder}{path.name}"


def file_problem(path: Path, key: str, settings: Settings) -> tuple[str, str] | None:
    """What the submit would reject this file for, read from disk the way it reads an upload from S3."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    content_type = content_type_for(path)
    return problem(Inspected(key, "", None, size, content_type, head, {}), settings)


def content_type_for(path: Path) -> str:
    """A content type as the AWS CLI guesses it: the submit refuses a non-image type before spending."""
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def background_problem(target: StackTarget, key: str) -> str | None:
    """Why the submit would refuse this background (the checks of cutout.magic_hour.assets), or None."""
    allowed = target.parameters.get("BackgroundPrefix") or DEFAULT_BACKGROUND_PREFIX
    if key != target.parameters.get("DefaultBackgroundKey") and not key.startswith(allowed):
        return f"background {key!r} is not under the stack's BackgroundPrefix {allowed!r}"
    if extension_of(key) not in IMAGE_EXTENSIONS:
        return f"background {key!r} has no image extension"
    try:
        target.client("s3").head_object(Bucket=target.bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return f"background s3://{target.bucket}/{key} does not exist (upload it first)"
        raise
    return None


def run(args: argparse.Namespace, target: StackTarget) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:  # checked before anything is uploaded: all or nothing on a typo
        raise TargetError(f"not a file: {', '.join(missing)} (nothing was uploaded)")
    background = args.background.lstrip("/") if args.background else None
    settings = Pipeline.from_target(target).settings()
    keys = {path: key_for(target, path, args.prefix) for path in args.files}
    refusals = [
        f"{path}: {code}: {why}"
        for path, key in keys.items()
        if (found := file_problem(path, key, settings)) is not None
        for code, why in [found]
    ]
    if background and (why := background_problem(target, background)):
        refusals.append(f"--background: {why}")
    for line in refusals:
        print(f"cutout: {'uploaded anyway' if args.force else 'refused'} {line}", file=sys.stderr)
    if refusals and not args.force:
        print(
            "cutout: nothing was uploaded (--force uploads them anyway: the pipeline rejects them, free)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    s3 = target.client("s3")
    bucket = target.bucket
    extra: dict[str, Any] = {"Metadata": {"background-key": background}} if background else {}
    uploaded: list[dict[str, str]] = []
    for path, key in keys.items():
        with path.open("rb") as body:
            put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type_for(path), **extra)
        # The id the submit derives: bucket, key and the ETag S3 holds (an empty object's too).
        etag = str(put["ETag"]).strip('"')
        uploaded.append(
            {"file": str(path), "uri": f"s3://{bucket}/{key}", "key": key, "job_id": job_id_for(bucket, key, etag)}
        )
    result = {"bucket": bucket, "background_key": background, "uploaded": uploaded}

    def draw(console: Any) -> None:
        for u in uploaded:  # one line per file: its key and its job id
            console.print(f"{u['uri']}  job {u['job_id']}", markup=False, soft_wrap=True)

    out = Output.from_args(args)
    out.emit(result, draw)
    if not out.json:
        out.note("follow them with: cutout jobs --since 1h   (or: cutout job ID)")
    return EXIT_OK
