"""``cutout upload FILE... [--prefix P]`` — put images where the stack watches, without the AWS CLI.

The local stack (found like every ops command) or a deployed one (``--stack NAME``): each file goes to the
stack's bucket under its input prefix (plus ``--prefix``), named as the file is. One line per file says the key
and the job id the pipeline derives for it (bucket, key, ETag: follow it with ``cutout job ID``).
"""

from __future__ import annotations

import argparse
import mimetypes
from pathlib import Path
from typing import Any

from cutout.domain.models import job_id_for

from cutout_dev.ops.output import EXIT_OK, Output
from cutout_dev.ops.target import StackTarget, TargetError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "upload",
        help="upload images into the stack's input prefix (no AWS CLI needed)",
        description="Upload files to the stack's bucket under its input prefix; prints each key and its job id.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="image files")
    parser.add_argument("--prefix", default="", metavar="P", help="under the input prefix, e.g. shop/ (default none)")
    parser.set_defaults(run=run)


def key_for(target: StackTarget, path: Path, prefix: str) -> str:
    """``<input prefix><prefix><file name>``: a prefix given without its ``/`` still names a folder."""
    folder = prefix.strip("/")
    return f"{target.input_prefix}{folder + '/' if folder else ''}{path.name}"


def run(args: argparse.Namespace, target: StackTarget) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:  # checked before anything is uploaded: all or nothing on a typo
        raise TargetError(f"not a file: {', '.join(missing)} (nothing was uploaded)")
    s3 = target.client("s3")
    bucket = target.bucket
    uploaded: list[dict[str, str]] = []
    for path in args.files:
        key = key_for(target, path, args.prefix)
        # A content type as the AWS CLI guesses it: the submit refuses a non-image type before spending.
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as body:
            put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        etag = str(put["ETag"]).strip('"')
        uploaded.append(
            {"file": str(path), "uri": f"s3://{bucket}/{key}", "key": key, "job_id": job_id_for(bucket, key, etag)}
        )
    result = {"bucket": bucket, "uploaded": uploaded}

    def draw(console: Any) -> None:
        for u in uploaded:  # one line per file: its key and its job id
            console.print(f"{u['uri']}  job {u['job_id']}", markup=False, soft_wrap=True)

    out = Output.from_args(args)
    out.emit(result, draw)
    if not out.json:
        out.note("follow them with: cutout jobs --since 1h   (or: cutout job ID)")
    return EXIT_OK
