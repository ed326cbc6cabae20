"""The renditions step under the renditions function's role, over moto server: a complete job's presets rendered
from its stored cutout, recorded on the job (never changing `complete`), one "Cutout Renditions Ready" event.

The job record, the original upload and its cutout are put as the paid path leaves them; the render request is the
"Cutout Completed" event as the template's rule delivers it (an EventBridge rule into a queue, here in moto).
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from cutout.domain.models import job_id_for

from tests.conftest import BUCKET, INPUT_PREFIX, OUTPUT_PREFIX, Aws
from tests.support.lambda_loader import FakeContext, cold_start
from tests.support.queues import receive_as_event

PARAMETER = "/cutout-test/cutout/presets"
RENDITIONS = "renditions/"
PRESETS = {
    "presets": {
        "marketplace": {"format": "jpeg", "background": "#FFFFFF", "canvas": [200, 200], "fill": 0.85},
        "thumb": {"format": "webp", "max_side": 40},
        "mask": {"format": "png", "output": "alpha"},
    },
    "rules": [{"prefix": "shop/", "presets": ["marketplace", "thumb"]}],
}


def cutout_png(size: tuple[int, int] = (160, 120), box: tuple[int, int, int, int] = (40, 30, 120, 90)) -> bytes:
    """A cutout as Magic Hour returns it: RGBA, transparent around an opaque subject (whose box is `box`)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(200, 30, 30, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def original_jpeg(size: tuple[int, int] = (160, 120), orientation: int | None = None) -> bytes:
    from PIL import Image

    image = Image.new("RGB", size, (90, 120, 160))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


class Stack:
    """What the paid path leaves behind, and the renditions function over it."""

    def __init__(self, aws: Aws, fn: Any, queue_url: str, events_url: str) -> None:
        self.aws, self.fn, self.queue_url, self.events_url = aws, fn, queue_url, events_url

    def set_presets(self, document: Any) -> None:
        value = document if isinstance(document, str) else json.dumps(document)
        self.aws.client("ssm").put_parameter(Name=PARAMETER, Value=value, Type="String", Overwrite=True)

    def complete_job(
        self,
        relative: str,
        *,
        cutout: bytes | None = None,
        original: bytes | None = None,
        metadata: dict[str, str] | None = None,
        status: str = "complete",
    ) -> str:
        s3 = self.aws.client("s3")
        key = INPUT_PREFIX + relative
        put = s3.put_object(
            Bucket=BUCKET, Key=key, Body=original or original_jpeg(), ContentType="image/jpeg", Metadata=metadata or {}
        )
        etag = put["ETag"].strip('"')
        job_id = job_id_for(BUCKET, key, etag)
        output_key = OUTPUT_PREFIX + relative.rsplit(".", 1)[0] + ".png"
        s3.put_object(Bucket=BUCKET, Key=output_key, Body=cutout or cutout_png(), ContentType="image/png")
        item = {
            "job_id": job_id,
            "status": status,
            "source_bucket": BUCKET,
            "source_key": key,
            "source_etag": etag,
            "output_bucket": BUCKET,
            "output_key": output_key,
            "created_at": "2026-12-07T10:00:00.000Z",
            "updated_at": "2026-12-07T10:00:09.000Z",
            "completed_at": "2026-12-07T10:00:09.000Z",
            **({"source_version_id": put["VersionId"]} if put.get("VersionId") else {}),
        }
        self.aws.client("dynamodb").put_item(TableName=self.aws.table, Item={k: {"S": v} for k, v in item.items()})
        return job_id

    def announce(self, job_id: str) -> None:
        """Finalize's "Cutout Completed" event, put on the default bus: the rule delivers it to the queue."""
        detail = {"job_id": job_id, "status": "complete"}
        entry = {"Source": "cutout", "DetailType": "Cutout Completed", "Detail": json.dumps(detail)}
        assert self.aws.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0

    def rebuild(self, job_id: str, presets: list[str] | None) -> None:
        body = json.dumps({"cutout": "render", "job_id": job_id, "presets": presets})
        self.aws.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=body)

    def run(self) -> dict[str, Any]:
        event = receive_as_event(self.aws.client("sqs"), self.queue_url)
        assert event["Records"], "nothing reached the renditions queue"
        result: dict[str, Any] = self.fn.lambda_handler(event, FakeContext())
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        (job,) = [j for j in self.aws.jobs() if j["job_id"] == job_id]
        return job

    def renditions(self) -> dict[str, dict[str, Any]]:
        s3 = self.aws.client("s3")
        listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=RENDITIONS).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"]) for o in listing}

    def published(self) -> list[dict[str, Any]]:
        sqs = self.aws.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.events_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages if "Renditions" in m["Body"]]


@pytest.fixture
def stack(aws: Aws, function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Stack:
    sqs, events = aws.client("sqs"), aws.client("events")
    queue_url = sqs.create_queue(QueueName="cutout-renditions")["QueueUrl"]
    events_url = sqs.create_queue(QueueName="cutout-events-observer")["QueueUrl"]

    def arn(url: str) -> str:
        return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    # The template's rule, and an integrator's rule observing what the stack publishes.
    events.put_rule(
        Name="renditions", EventPattern=json.dumps({"source": ["cutout"], "detail-type": ["Cutout Completed"]})
    )
    events.put_targets(Rule="renditions", Targets=[{"Id": "q", "Arn": arn(queue_url)}])
    events.put_rule(
        Name="observe", EventPattern=json.dumps({"source": ["cutout"], "detail-type": ["Cutout Renditions Ready"]})
    )
    events.put_targets(Rule="observe", Targets=[{"Id": "q", "Arn": arn(events_url)}])
    aws.client("ssm").put_parameter(Name=PARAMETER, Value="{}", Type="String")
    for name, value in {
        "RENDITIONS_PREFIX": RENDITIONS,
        "PRESETS_PARAMETER": PARAMETER,
        "MAX_RENDITION_PIXELS": "40000000",
        "EVENT_BUS_NAME": "default",
    }.items():
        monkeypatch.setenv(name, value)
    fn = cold_start("renditions")
    fn.configure(presets_max_age=0)  # every message reads the stored presets: the tests change them
    return Stack(aws, fn, queue_url, events_url)


def _image(body: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(body))


def test_a_rule_and_the_uploads_metadata_pick_the_presets_rendered_from_the_stored_cutout(stack: Stack) -> None:
    # given presets whose rule covers shop/, and an upload there that also names the mask
    stack.set_presets(PRESETS)
    job_id = stack.complete_job("shop/shoe.jpg", metadata={"cutout-presets": "mask"})
    cutout_before = stack.aws.client("s3").get_object(Bucket=BUCKET, Key=OUTPUT_PREFIX + "shop/shoe.png")["ETag"]

    # when its completion reaches the renditions function
    stack.announce(job_id)
    assert stack.run() == {"batchItemFailures": []}

    # then each preset is written under its name with its type and the job's and preset's names
    objects = stack.renditions()
    assert set(objects) == {
        "renditions/marketplace/shop/shoe.jpg",
        "renditions/thumb/shop/shoe.webp",
        "renditions/mask/shop/shoe.png",
    }
    market = objects["renditions/marketplace/shop/shoe.jpg"]
    assert market["ContentType"] == "image/jpeg"
    assert market["Metadata"] == {"cutout-job-id": job_id, "cutout-preset": "marketplace"}
    image = _image(market["Body"].read())
    assert image.format == "JPEG" and image.size == (200, 200)
    assert image.convert("RGB").getpixel((0, 0)) == (255, 255, 255)
    assert objects["renditions/thumb/shop/shoe.webp"]["ContentType"] == "image/webp"
    assert max(_image(objects["renditions/thumb/shop/shoe.webp"]["Body"].read()).size) == 40
    assert _image(objects["renditions/mask/shop/shoe.png"]["Body"].read()).mode == "L"
    # ... the job records each one and is still complete; the cutout is untouched
    job = stack.job(job_id)
    assert job["status"] == "complete"
    assert set(job["renditions"]) == {"marketplace", "thumb", "mask"}
    assert job["renditions"]["marketplace"]["status"] == "ok"
    assert job["renditions"]["marketplace"]["key"] == "renditions/marketplace/shop/shoe.jpg"
    assert job["renditions"]["marketplace"]["bytes"] == market["ContentLength"]
    assert (job["renditions"]["marketplace"]["width"], job["renditions"]["marketplace"]["height"]) == (200, 200)
    assert job["requested_presets"] == ["mask"] and job["unknown_presets"] == []
    assert (
        stack.aws.client("s3").get_object(Bucket=BUCKET, Key=OUTPUT_PREFIX + "shop/shoe.png")["ETag"] == cutout_before
    )
    # ... and one event says so, with the keys
    (event,) = stack.published()
    assert event["detail-type"] == "Cutout Renditions Ready"
    assert event["detail"]["job_id"] == job_id
    assert event["detail"]["renditions"]["thumb"]["key"] == "renditions/thumb/shop/shoe.webp"
    assert event["detail"]["failed"] == {}


def test_no_presets_means_nothing_but_the_parameter_read(stack: Stack) -> None:
    # given the stack's empty document, and a complete job
    job_id = stack.complete_job("shop/shoe.jpg")
    before = stack.job(job_id)

    # when its completion arrives
    stack.announce(job_id)
    assert stack.run() == {"batchItemFailures": []}

    # then nothing is written, recorded or published
    assert stack.renditions() == {}
    assert stack.job(job_id) == before
    assert stack.published() == []


def test_an_unknown_name_is_recorded_and_the_others_are_made(stack: Stack) -> None:
    stack.set_presets(PRESETS)
    job_id = stack.complete_job("misc/lamp.jpg", metadata={"cutout-presets": "thumb, poster"})

    stack.announce(job_id)
    assert stack.run() == {"batchItemFailures": []}

    job = stack.job(job_id)
    assert job["status"] == "complete"
    assert set(job["renditions"]) == {"thumb"}
    assert job["unknown_presets"] == ["poster"]
    assert set(stack.renditions()) == {"renditions/thumb/misc/lamp.webp"}
    (event,) = stack.published()
    assert event["detail"]["unknown_presets"] == ["poster"]


def test_a_corrupt_cutout_fails_its_renditions_with_the_reason_and_touches_nothing(stack: Stack) -> None:
    stack.set_presets(PRESETS)
    broken = cutout_png()[:200]  # a PNG cut short: its header reads, its pixels do not
    job_id = stack.complete_job("shop/vase.jpg", cutout=broken)

    stack.announce(job_id)
    assert stack.run() == {"batchItemFailures": []}

    job = stack.job(job_id)
    assert job["status"] == "complete"
    assert {r["status"] for r in job["renditions"].values()} == {"failed"}
    assert all(r["reason"].startswith("unreadable:") for r in job["renditions"].values())
    assert stack.renditions() == {}
    stored = stack.aws.client("s3").get_object(Bucket=BUCKET, Key=OUTPUT_PREFIX + "shop/vase.png")["Body"].read()
    assert stored == broken
    (event,) = stack.published()
    assert set(event["detail"]["failed"]) == {"marketplace", "thumb"} and event["detail"]["renditions"] == {}


def test_a_cutout_over_the_pixel_limit_is_refused_before_decoding(stack: Stack) -> None:
    from cutout.runtime.config import Settings

    stack.set_presets(PRESETS)
    stack.fn.configure(Settings.from_env()._replace(max_rendition_pixels=100 * 100), presets_max_age=0)
    job_id = stack.complete_job("shop/rug.jpg")  # a 160 x 120 cutout: 19,200 pixels

    stack.announce(job_id)
    assert stack.run() == {"batchItemFailures": []}

    reasons = {name: r["reason"] for name, r in stack.job(job_id)["renditions"].items()}
    assert set(reasons) == {"marketplace", "thumb"}
    assert all(reason.startswith("too_large:") for reason in reasons.values())


def test_a_redelivered_completion_rewrites_the_same_objects_and_records_no_second_set(stack: Stack) -> None:
    stack.set_presets(PRESETS)
    job_id = stack.complete_job("shop/shoe.jpg")
    stack.announce(job_id)
    assert stack.run() == {"batchItemFailures": []}
    first = stack.job(job_id)

    stack.announce(job_id)  # EventBridge delivers at least once
    assert stack.run() == {"batchItemFailures": []}

    again = stack.job(job_id)
    assert set(again["renditions"]) == set(first["renditions"]) == {"marketplace", "thumb"}
    assert {n: r["key"] for n, r in again["renditions"].items()} == {
        n: r["key"] for n, r in first["renditions"].items()
    }
    assert set(stack.renditions()) == {"renditions/marketplace/shop/shoe.jpg", "renditions/thumb/shop/shoe.webp"}
    assert again["status"] == "complete"


def test_a_rebuild_of_one_preset_keeps_the_others_records(stack: Stack) -> None:
    stack.set_presets(PRESETS)
    job_id = stack.complete_job("shop/shoe.jpg")
    stack.announce(job_id)
    assert stack.run() == {"batchItemFailures": []}
    first = stack.job(job_id)["renditions"]

    # the operator changes the thumbnail's size and rebuilds it alone
    stack.set_presets({**PRESETS, "presets": {**PRESETS["presets"], "thumb": {"format": "webp", "max_side": 20}}})
    stack.rebuild(job_id, ["thumb"])
    assert stack.run() == {"batchItemFailures": []}

    rebuilt = stack.job(job_id)["renditions"]
    assert rebuilt["marketplace"] == first["marketplace"]
    assert max(rebuilt["thumb"]["width"], rebuilt["thumb"]["height"]) == 20


def test_a_job_no_longer_complete_gets_no_renditions(stack: Stack) -> None:
    stack.set_presets(PRESETS)
    job_id = stack.complete_job("shop/shoe.jpg", status="retry_pending")

    stack.rebuild(job_id, None)
    assert stack.run() == {"batchItemFailures": []}

    assert stack.renditions() == {}
    assert "renditions" not in stack.job(job_id)


def test_a_stored_document_that_does_not_validate_sends_the_message_back(stack: Stack) -> None:
    # given a document stored around `cutout presets set` (a JPEG needs a background)
    stack.set_presets({"presets": {"bad": {"format": "jpeg"}}})
    job_id = stack.complete_job("shop/shoe.jpg")
    stack.rebuild(job_id, None)

    # when it is read: a configuration error, retried (then dead-lettered, redrivable once fixed)
    event = receive_as_event(stack.aws.client("sqs"), stack.queue_url)
    result = stack.fn.lambda_handler(event, FakeContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert "renditions" not in stack.job(job_id)


@pytest.mark.parametrize(
    ("cutout_size", "expected"),
    [
        ((160, 120), "portrait"),  # the remover kept the stored (landscape) pixels: the tag is applied here
        ((120, 160), "portrait"),  # the remover applied the tag already: not turned twice
    ],
)
def test_renditions_are_upright_whether_or_not_the_remover_applied_the_exif_orientation(
    stack: Stack, cutout_size: tuple[int, int], expected: str
) -> None:
    # given a phone portrait stored landscape with EXIF orientation 6, in a versioned bucket (the job names the version)
    stack.aws.client("s3").put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    stack.set_presets({"presets": {"full": {"format": "png"}}, "rules": [{"prefix": "", "presets": ["full"]}]})
    w, h = cutout_size
    cutout = cutout_png(cutout_size, box=(w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    job_id = stack.complete_job("phone/portrait.jpg", cutout=cutout, original=original_jpeg((160, 120), orientation=6))

    stack.announce(job_id)
    assert stack.run() == {"batchItemFailures": []}

    (obj,) = stack.renditions().values()
    width, height = _image(obj["Body"].read()).size
    assert ("portrait" if height > width else "landscape") == expected
