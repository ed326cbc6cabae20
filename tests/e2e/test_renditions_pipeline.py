"""Renditions end to end on the local stack: upload -> cutout (the paid path) -> "Cutout Completed" -> the rule ->
the renditions queue -> the renditions function (its role enforced) -> renditions in S3, on the job, one event.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cutout_dev.local_stack import LocalStack
from cutout_dev.local_stack.stack import job_id_for

MakeStack = Callable[..., LocalStack]
PRESETS = {
    "presets": {
        "marketplace": {"format": "jpeg", "background": "#FFFFFF", "canvas": [400, 400], "fill": 0.85},
        "thumb": {"format": "webp", "max_side": 64},
        "mask": {"format": "png", "output": "alpha"},
    },
    "rules": [{"prefix": "shop/", "presets": ["marketplace", "thumb"]}],
}


def _observe(stack: LocalStack) -> str:
    """An integrator's rule: every "Cutout Renditions Ready" event into a queue of its own."""
    sqs, events = stack.client("sqs"), stack.client("events")
    url = str(sqs.create_queue(QueueName="renditions-observer")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["cutout"], "detail-type": ["Cutout Renditions Ready"]}
    events.put_rule(Name="observe-renditions", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="observe-renditions", Targets=[{"Id": "q", "Arn": arn}])
    return url


def _events(stack: LocalStack, url: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for m in messages:
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _set_presets(stack: LocalStack, document: Any) -> None:
    name = stack.endpoints.stack_outputs["PresetsParameterName"]
    stack.client("ssm").put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)


def _wait_renditions(stack: LocalStack, job_id: str, *, after: str = "", timeout: float = 60) -> dict[str, Any]:
    """The job once a renditions run later than `after` is recorded on it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stack.job(job_id) or {}
        if str(job.get("renditions_at") or "") > after:
            return job
        time.sleep(0.2)
    raise AssertionError(f"no renditions run recorded on {job_id} after {after!r} within {timeout} s: {job}")


def _upload(stack: LocalStack, path: Path, relative: str, metadata: dict[str, str] | None = None) -> str:
    ep = stack.endpoints
    key = ep.input_prefix + relative
    put = stack.client("s3").put_object(Bucket=ep.bucket, Key=key, Body=path.read_bytes(), Metadata=metadata or {})
    return job_id_for(ep.bucket, key, put["ETag"].strip('"'))


def _object(stack: LocalStack, key: str) -> dict[str, Any]:
    return dict(stack.client("s3").get_object(Bucket=stack.endpoints.output_bucket, Key=key))


def test_uploads_get_their_renditions_recorded_and_announced(make_stack: MakeStack, samples: dict[str, Path]) -> None:
    # given the stack with presets (a rule for shop/) and an integrator listening
    stack = make_stack(webhooks=True)
    _set_presets(stack, PRESETS)
    observer = _observe(stack)

    # when one upload lands under the rule and another names presets in its metadata (one unknown)
    shop = _upload(stack, samples["red flower.png"], "shop/red flower.png")
    named = _upload(stack, samples["red flower.png"], "misc/flower.png", {"cutout-presets": "mask,poster"})
    jobs = stack.wait_for_terminal([shop, named], timeout=60)
    assert {j["status"] for j in jobs.values()} == {"complete"}
    shop_job, named_job = _wait_renditions(stack, shop), _wait_renditions(stack, named)

    # then the rule's presets exist with their types, recorded on the still complete job
    assert shop_job["status"] == "complete"
    assert set(shop_job["renditions"]) == {"marketplace", "thumb"}
    market = _object(stack, "renditions/marketplace/shop/red flower.jpg")
    assert market["ContentType"] == "image/jpeg"
    assert market["Metadata"] == {"cutout-job-id": shop, "cutout-preset": "marketplace"}
    image = Image.open(io.BytesIO(market["Body"].read()))
    assert image.size == (400, 400) and image.convert("RGB").getpixel((0, 0)) == (255, 255, 255)
    assert _object(stack, "renditions/thumb/shop/red flower.webp")["ContentType"] == "image/webp"
    assert shop_job["renditions"]["thumb"]["key"] == "renditions/thumb/shop/red flower.webp"
    # ... the metadata's presets too, the unknown name recorded, not an error
    assert set(named_job["renditions"]) == {"mask"}
    assert named_job["unknown_presets"] == ["poster"]
    assert named_job["requested_presets"] == ["mask", "poster"]
    assert _object(stack, "renditions/mask/misc/flower.png")["ContentType"] == "image/png"
    # ... one event per job, with the keys; and no rendition became an upload (no job for them)
    stack.emulator.wait_until(stack.quiescent, timeout=15)
    events = _events(stack, observer)
    assert sorted(e["detail"]["job_id"] for e in events) == sorted([shop, named])
    (shop_event,) = [e for e in events if e["detail"]["job_id"] == shop]
    assert shop_event["detail"]["renditions"]["marketplace"]["key"] == "renditions/marketplace/shop/red flower.jpg"
    assert {j["job_id"] for j in stack.jobs()} == {shop, named}
    assert len(stack.emulator.state.creates) == 2  # renditions cost no Magic Hour call


def test_a_corrupt_cutout_and_a_redelivery(make_stack: MakeStack, samples: dict[str, Path]) -> None:
    stack = make_stack(webhooks=True)
    _set_presets(stack, PRESETS)
    job_id = _upload(stack, samples["red flower.png"], "shop/vase.png")
    stack.wait_for_terminal([job_id], timeout=60)
    first = _wait_renditions(stack, job_id)
    thumb_before = _object(stack, first["renditions"]["thumb"]["key"])["Body"].read()

    # when the completion is delivered again (EventBridge delivers at least once)
    detail = {"job_id": job_id, "status": "complete", "output_key": first["output_key"]}
    entry = {"Source": "cutout", "DetailType": "Cutout Completed", "Detail": json.dumps(detail)}
    stack.client("events").put_events(Entries=[entry])
    again = _wait_renditions(stack, job_id, after=first["renditions_at"])

    # then the same objects are written and no second set recorded
    assert set(again["renditions"]) == set(first["renditions"])
    assert {n: r["key"] for n, r in again["renditions"].items()} == {
        n: r["key"] for n, r in first["renditions"].items()
    }
    listing = stack.client("s3").list_objects_v2(Bucket=stack.endpoints.output_bucket, Prefix="renditions/")
    assert {o["Key"] for o in listing["Contents"]} == {r["key"] for r in first["renditions"].values()}

    # when the stored cutout is corrupt and the job's renditions are rebuilt
    bucket, key = stack.endpoints.output_bucket, str(first["output_key"])
    broken = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()[:300]
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=broken, ContentType="image/png")
    request = {"cutout": "render", "job_id": job_id, "presets": None}
    stack.client("sqs").send_message(
        QueueUrl=stack.endpoints.stack_outputs["RenditionsQueueUrl"], MessageBody=json.dumps(request)
    )
    failed = _wait_renditions(stack, job_id, after=again["renditions_at"])

    # then each rendition is recorded failed with its reason; the cutout and the renditions made before stay
    assert failed["status"] == "complete"
    assert {r["status"] for r in failed["renditions"].values()} == {"failed"}
    assert all(r["reason"].startswith("unreadable:") for r in failed["renditions"].values())
    assert stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == broken
    assert _object(stack, first["renditions"]["thumb"]["key"])["Body"].read() == thumb_before


def _phone_portrait() -> bytes:
    """A portrait picture (red mark at the top, blue at the bottom, on white) stored landscape with EXIF
    orientation 6, as phones write it: the stored frame must turn 90 degrees clockwise to be upright."""
    from PIL import ImageDraw

    upright = Image.new("RGB", (120, 180), (255, 255, 255))
    draw = ImageDraw.Draw(upright)
    draw.rectangle((40, 20, 80, 60), fill=(220, 20, 20))
    draw.rectangle((40, 120, 80, 160), fill=(20, 20, 220))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise: what orientation 6 undoes
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, format="JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize("applied", [False, True], ids=["remover-keeps-stored-pixels", "remover-applies-exif"])
def test_renditions_are_upright_whether_or_not_the_remover_applies_the_exif_orientation(
    make_stack: MakeStack, tmp_path: Path, applied: bool
) -> None:
    # given a Magic Hour that does (or does not) apply the upload's orientation before removing the background
    stack = make_stack(webhooks=True, emulator={"exif_transpose": applied})
    _set_presets(stack, {"presets": {"full": {"format": "png"}}, "rules": [{"prefix": "", "presets": ["full"]}]})
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(_phone_portrait())

    # when a phone portrait is uploaded and rendered
    job_id = _upload(stack, photo, "phone/portrait.jpg")
    stack.wait_for_terminal([job_id], timeout=60)
    job = _wait_renditions(stack, job_id)

    # then the cutout is as the remover gave it, and the rendition is upright: portrait, red above blue
    cutout = Image.open(io.BytesIO(_object(stack, str(job["output_key"]))["Body"].read()))
    assert (cutout.height > cutout.width) == applied
    rendition = Image.open(io.BytesIO(_object(stack, job["renditions"]["full"]["key"])["Body"].read())).convert("RGBA")
    assert rendition.height > rendition.width
    pixels = [rendition.getpixel((rendition.width // 2, y)) for y in range(rendition.height)]
    reds = [y for y, p in enumerate(pixels) if p[3] > 200 and p[0] > 150 and p[2] < 100]
    blues = [y for y, p in enumerate(pixels) if p[3] > 200 and p[2] > 150 and p[0] < 100]
    assert reds and blues and max(reds) < min(blues)
