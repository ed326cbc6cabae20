"""Against a deployed stack (opt-in): resources are found from the stack's outputs, as a user would.

Run: `CUTOUT_AWS_TESTS=1 CUTOUT_STACK_NAME=cutout AWS_PROFILE=... .venv/bin/python -m pytest tests/aws -m aws`
(after `sam deploy` and putting a real Magic Hour key in the secret: each run spends 5 credits).
"""

from __future__ import annotations

import io
import os
import time
import uuid
from typing import Any

import pytest

pytestmark = [
    pytest.mark.aws,
    pytest.mark.skipif(os.environ.get("CUTOUT_AWS_TESTS") != "1", reason="needs a deployed stack: CUTOUT_AWS_TESTS=1"),
]


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    import boto3

    # A real account: never the moto endpoint the rest of the suite uses.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    stack = os.environ.get("CUTOUT_STACK_NAME", "cutout")
    desc = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}


def test_an_upload_becomes_a_cutout(outputs: dict[str, str]) -> None:
    import boto3
    from PIL import Image

    s3 = boto3.client("s3")
    table = boto3.client("dynamodb")
    bucket = outputs["BucketName"]
    input_prefix = outputs["InputS3Uri"].split(bucket + "/", 1)[1]
    img = Image.new("RGB", (64, 64), (255, 255, 255))
    img.paste((200, 0, 0), (16, 16, 48, 48))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    key = f"{input_prefix}aws-test/{uuid.uuid4().hex} red square.png"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue(), ContentType="image/png")["ETag"]

    from cutout.models import job_id_for

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
