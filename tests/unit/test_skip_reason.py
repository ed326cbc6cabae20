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


@pytest.mark.parametrize(
    ("input_prefix", "default_background", "key", "reason"),
    [
        # the whole bucket watched: the backgrounds and the default background are the stack's, not uploads
        ("", "", "backgrounds/studio.png", "stack_owned"),
        ("", "", "backgrounds/nested/beach.jpg", "stack_owned"),
        ("", "studio.png", "studio.png", "stack_owned"),  # a default background outside the prefix
        ("", "studio.png", "studio.png.png", None),  # a key that only starts like it is an upload
        ("", "", "backgroundsx/cat.png", None),  # a prefix is a folder, not a string start
        # an input prefix with the backgrounds nested under it
        ("incoming/", "", "incoming/backgrounds/studio.png", None),  # BACKGROUND_PREFIX is backgrounds/
        ("incoming/", "incoming/studio.png", "incoming/studio.png", "stack_owned"),
        ("incoming/", "", "incoming/cat.png", None),
    ],
)
def test_the_stacks_own_objects_are_never_uploads(
    input_prefix: str, default_background: str, key: str, reason: str | None
) -> None:
    # given a stack with backgrounds under backgrounds/ and maybe a default background
    settings = Settings.from_env(
        {
            "JOBS_TABLE": "jobs",
            "SOURCE_BUCKET": "uploads",
            "INPUT_PREFIX": input_prefix,
            "OUTPUT_PREFIX": "cutouts/",
            "DEFAULT_BACKGROUND_KEY": default_background,
        }
    )
    # when an event names `key` / then it is skipped (free: no record, no Magic Hour call) or processed
    assert skip_reason(ref(key), settings) == reason


def test_backgrounds_nested_under_the_input_prefix_are_skipped_too() -> None:
    # given backgrounds kept under the input prefix / then they are not submitted, the uploads beside them are
    settings = SETTINGS._replace(input_prefix="incoming/", background_prefix="incoming/backgrounds/")
    assert skip_reason(ref("incoming/backgrounds/studio.png"), settings) == "stack_owned"
    assert skip_reason(ref("incoming/cat.png"), settings) is None


def test_every_stack_owned_prefix_is_refused() -> None:
    # the one list a new prefix the stack keeps for itself joins
    assert SETTINGS.stack_owned_prefixes() == ("backgrounds/",)
    for prefix in SETTINGS.stack_owned_prefixes():
        assert skip_reason(ref(prefix + "x.png"), SETTINGS) == "stack_owned"


def test_an_input_prefix_under_the_background_prefix_is_refused_at_cold_start() -> None:
    # every upload would be a background: the stack would silently do nothing, so it does not start
    from cutout.domain.errors import InvalidEnvironment

    env = {"JOBS_TABLE": "jobs", "INPUT_PREFIX": "backgrounds/in/", "OUTPUT_PREFIX": "cutouts/"}
    with pytest.raises(InvalidEnvironment, match="BACKGROUND_PREFIX"):
        Settings.from_env(env)


def test_skip_reason_never_takes_a_rendition_for_an_upload() -> None:
    # given the whole bucket watched, and renditions written beside the cutouts
    settings = SETTINGS._replace(renditions_prefix="renditions/")
    # when a rendition lands / then it is skipped, for free; the same key in another bucket is not ours anyway
    assert skip_reason(ref("renditions/thumb/cat.webp"), settings) == "renditions_prefix"
    assert skip_reason(ref("renditionsx/cat.png"), settings) is None
