"""Against a deployed stack (opt-in): resources are found from the stack's outputs, as a user would.

Run: `CUTOUT_AWS_TESTS=1 CUTOUT_STACK_NAME=cutout AWS_PROFILE=... .venv/bin/python -m pytest tests/aws -m aws`
(after `sam deploy` and putting a real Magic Hour key in the secret: each run spends 10 credits, two images).
The ops CLI is run through its entry point, as an operator would: `cutout --stack NAME status`, `backfill`, `job`.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from typing import Any

import pytest

pytestmark = [
    pytest.mark.aws,
    pytest.mark.skipif(os.environ.get("CUTOUT_AWS_TESTS") != "1", reason="needs a deployed stack: CUTOUT_AWS_TESTS=1"),
]


STACK = os.environ.get("CUTOUT_STACK_NAME", "cutout")
TERMINAL = ("complete", "error", "canceled", "timed_out", "rejected")


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    import boto3

    # A real account: never the moto endpoint the rest of the suite uses.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    desc = boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}


def _red_square() -> bytes:
    from PIL import Image

    img = Image.new("RGB", (64, 64), (255, 255, 255))
    img.paste((200, 0, 0), (16, 16, 48, 48))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    from cutout_dev import cli

    code = cli.main(["--stack", STACK, *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_an_upload_becomes_a_cutout(outputs: dict[str, str]) -> None:
    import boto3
    from PIL import Image

    s3 = boto3.client("s3")
    table = boto3.client("dynamodb")
    bucket = outputs["BucketName"]
    input_prefix = outputs["InputS3Uri"].split(bucket + "/", 1)[1]
    key = f"{input_prefix}aws-test/{uuid.uuid4().hex} red square.png"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=_red_square(), ContentType="image/png")["ETag"]

    from cutout.domain.models import job_id_for

    job_id = job_id_for(bucket, key, etag)
    deadline = time.time() + 300
    item: dict[str, Any] = {}
    while time.time() < deadline:
        item = table.get_item(TableName=outputs["JobsTableName"], Key={"job_id": {"S": job_id}}).get("Item", {})
        if item.get("status", {}).get("S") in ("complete", "error", "canceled", "timed_out", "rejected"):
            break
        time.sleep(5)
    assert item["status"]["S"] == "complete", item
    out = s3.get_object(Bucket=item["output_bucket"]["S"], Key=item["output_key"]["S"])
    cut = Image.open(io.BytesIO(out["Body"].read()))
    assert cut.mode == "RGBA"
    assert cut.size == (64, 64)


def test_status_reads_the_deployed_stack(outputs: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, status = _cli(capsys, "status")

    assert code in (0, 2)  # 2 = something needs a person (a DLQ or an alarm): still a correct answer
    assert status["stack"] == STACK
    assert status["local"] is False
    assert set(status["dlqs"]) == {"IngestDLQ", "PollDLQ", "CompletionDLQ", "RenditionsDLQ"}
    assert status["needs_attention"] == (code == 2)
    assert status["dashboard"].startswith("https://")


def test_a_one_image_backfill_racing_its_upload_creates_once(
    outputs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    s3 = boto3.client("s3")
    bucket = outputs["BucketName"]
    input_prefix = outputs["InputS3Uri"].split(bucket + "/", 1)[1]
    prefix = f"{input_prefix}aws-backfill/{uuid.uuid4().hex}/"
    key = f"{prefix}red square.png"
    # Any PUT is an upload (the EventBridge rule sees it), so the backfill races the upload's own event: the
    # job id and the claim must make it one create either way.
    s3.put_object(Bucket=bucket, Key=key, Body=_red_square(), ContentType="image/png")
    code, _ = _cli(capsys, "backfill", f"s3://{bucket}/{prefix}", "--limit", "1", "--yes")
    assert code == 0

    deadline = time.time() + 300
    job: dict[str, Any] = {}
    while time.time() < deadline:
        code, job = _cli(capsys, "job", f"s3://{bucket}/{key}")
        if code == 0 and job["status"] in TERMINAL:
            break
        time.sleep(5)
    assert job["status"] == "complete", job
    assert job["credits"] == 5  # one create
    code, listed = _cli(capsys, "jobs", "--prefix", prefix, "--since", "1h")
    assert [j["job_id"] for j in listed["jobs"]] == [job["job_id"]]
