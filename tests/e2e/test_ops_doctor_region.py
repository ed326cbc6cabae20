"""``cutout doctor`` on a local stack given an existing bucket in another region than the stack's (its own stack: a
second local stack must not run beside test_ops_doctor's, which shares moto's state in this process)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from cutout_dev import local_cli
from cutout_dev.local_stack import LocalStack, LocalStackConfig
from tests.e2e.test_ops_doctor import doctor


def test_an_existing_bucket_in_another_region_is_found_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a stack (us-east-1) told to watch an existing bucket that was created in eu-west-1
    config = LocalStackConfig(
        function_log=tmp_path / "functions.log",
        emulator={"queue_seconds": 0.05},
        schedule_interval_seconds=0,
        parameters={"ExistingBucketName": "photos-in-ireland"},
        stack_name="cutout-elsewhere",
    )
    with LocalStack(config) as elsewhere:
        s3 = boto3.client(
            "s3",
            endpoint_url=elsewhere.endpoints.aws,
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="photos-in-ireland", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_notification_configuration(
            Bucket="photos-in-ireland", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        monkeypatch.setenv("CUTOUT_LOCAL_STACK_FILE", str(tmp_path / "endpoints.json"))
        local_cli.write_state(elsewhere)
        # when the doctor looks at it
        code, checks = doctor(capsys, "Existing bucket in another region than the stack")
    # then the bucket's region is the finding, with what to do, and nothing else about the bucket fails
    assert code == 2
    region = checks["bucket-region"]
    assert region["status"] == "fail"
    assert "s3://photos-in-ireland is in eu-west-1, the stack in us-east-1" in region["detail"]
    assert "no upload starts a job" in region["detail"]
    assert region["fix"] == "cutout local up --param ExistingBucketName=<a bucket in us-east-1>"
    assert checks["bucket-events"]["status"] == "ok"
