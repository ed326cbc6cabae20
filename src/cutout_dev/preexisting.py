"""Put images into the running local stack's bucket as if they had been there before Cutout watched it.

    python -m cutout_dev.preexisting FILE... [--prefix P]

For trying ``cutout backfill`` locally: a bucket that existed before the stack holds objects no event ever
announced. This writes each file under the stack's input prefix (plus ``--prefix``) with the bucket's EventBridge
notifications turned off for the moment of the write, then puts them back as they were, so no job is made until
a backfill sends the pipeline the "Object Created" events an upload would have. Local stack only: a deployed
bucket's notifications are not for a helper to switch off.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cutout_dev.ops.target import TargetError, resolve


@contextmanager
def unwatched(s3: Any, bucket: str) -> Iterator[None]:
    """The bucket's notification configuration emptied while the block runs, then restored as it was.

    PutBucketNotificationConfiguration replaces the bucket's whole notification configuration (Amazon S3 API
    Reference, "PutBucketNotificationConfiguration"), so the saved one is put back whole.
    """
    saved = s3.get_bucket_notification_configuration(Bucket=bucket)
    saved.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        yield
    finally:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.preexisting", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--prefix", default="", metavar="P", help="under the input prefix, e.g. old/")
    args = parser.parse_args(argv)
    try:
        target = resolve(None)  # the running local stack only
        s3 = target.client("s3")
        folder = args.prefix.strip("/")
        location = f"s3://{target.bucket}/{target.input_prefix}{folder + '/' if folder else ''}"
        with unwatched(s3, target.bucket):
            for path in args.files:
                key = f"{target.input_prefix}{folder + '/' if folder else ''}{path.name}"
                s3.put_object(Bucket=target.bucket, Key=key, Body=path.read_bytes())
                print(f"put (no event) s3://{target.bucket}/{key}")
    except (TargetError, OSError, ClientError, BotoCoreError) as exc:
        print(f"preexisting: {exc}", file=sys.stderr)
        return 1
    print(f"Nothing will process them until: cutout backfill {location} --dry-run   (then without --dry-run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
