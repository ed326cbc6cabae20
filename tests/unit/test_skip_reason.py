"""cutout.aws.inspection.skip_reason: the free filters the submit and a backfill share, from settings alone."""

from __future__ import annotations

import pytest
from cutout.aws.inspection import skip_reason
from cutout.aws.s3_events import ObjectRef
from cutout.runtime.config import Settings

SETTINGS = Settings.from_env(
    {"JOBS_TABLE": "jobs", "SOURCE_BUCKET": "uploads", "INPUT_PREFIX": "", "OUTPUT_PREFIX": "cutouts/"}
)


def ref(key: str, bucket: str = "uploads") -> ObjectRef:
    return ObjectRef(bucket, key, key, "etag", None, 10, "eventbridge")


@pytest.mark.parametrize(
    ("bucket", "key", "reason"),
    [
        ("other", "cat.png", "wrong_bucket"),
        ("uploads", "albums/", "folder_marker"),
        ("uploads", "cutouts/cat.png", "output_prefix"),
        ("uploads", "albums/cat.png", None),
    ],
)
def test_skip_reason_names_what_is_not_ours(bucket: str, key: str, reason: str | None) -> None:
    # given a stack reading the whole bucket `uploads` and writing cutouts/ into it
    # when an event names `key` in `bucket` / then it is skipped for `reason`, or processed
    assert skip_reason(ref(key, bucket), SETTINGS) == reason


def test_skip_reason_keeps_to_the_input_prefix() -> None:
    # given a stack reading incoming/ only / when an object lies beside it / then it is outside the input prefix
    settings = SETTINGS._replace(input_prefix="incoming/")
    assert skip_reason(ref("elsewhere/cat.png"), settings) == "outside_input_prefix"
    assert skip_reason(ref("incoming/cat.png"), settings) is None


def test_skip_reason_never_takes_a_rendition_for_an_upload() -> None:
    # given the whole bucket watched, and renditions written beside the cutouts
    settings = SETTINGS._replace(renditions_prefix="renditions/")
    # when a rendition lands / then it is skipped, for free; the same key in another bucket is not ours anyway
    assert skip_reason(ref("renditions/thumb/cat.webp"), settings) == "renditions_prefix"
    assert skip_reason(ref("renditionsx/cat.png"), settings) is None
