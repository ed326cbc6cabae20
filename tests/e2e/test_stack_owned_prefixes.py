"""The stack's own objects are never uploads: with the whole bucket watched (InputPrefix ""), a background under
BackgroundPrefix, or the DefaultBackgroundKey, creates no job and no Magic Hour project (5 credits each otherwise),
whether its event is filtered by the ingest rule or reaches the submit anyway."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cutout_dev.aws_events import eventbridge_object_created
from cutout_dev.local_stack import LocalStack
from cutout_dev.local_stack.queries import job_id_for

MakeStack = Callable[..., LocalStack]


def test_with_the_whole_bucket_watched_backgrounds_create_no_job_and_no_project(
    make_stack: MakeStack, samples: dict[str, Path]
) -> None:
    # given: the whole bucket watched, a default background outside the background prefix
    stack = make_stack(webhooks=True, parameters={"InputPrefix": "", "DefaultBackgroundKey": "studio.png"})
    ep = stack.endpoints
    assert ep.input_prefix == ""
    body = samples["red flower.png"].read_bytes()
    s3 = stack.client("s3")
    # when: two backgrounds are put, then an upload beside them
    backgrounds = ["backgrounds/beach.png", "studio.png"]
    etags = {key: s3.put_object(Bucket=ep.bucket, Key=key, Body=body)["ETag"].strip('"') for key in backgrounds}
    # ... and the backgrounds' events are also sent straight to the ingest queue, past the rule (as an S3
    # notification or a replayed event would be): the submit's skip filter is the guard there
    for key, etag in etags.items():
        event = eventbridge_object_created(ep.bucket, key, etag, len(body))
        stack.client("sqs").send_message(QueueUrl=ep.queues["IngestQueue"], MessageBody=json.dumps(event))
    uploaded = stack.upload(body, key="albums/cat.png")

    # then: the upload is cut out, and it is the only job and the only Magic Hour project
    jobs = stack.wait_for_terminal([uploaded], timeout=60)
    assert jobs[uploaded.job_id]["status"] == "complete"
    stack.emulator.wait_until(stack.quiescent, timeout=30)
    assert [c.name for c in stack.emulator.state.creates] == [f"cutout:{uploaded.job_id}"]
    assert [j["job_id"] for j in stack.jobs()] == [uploaded.job_id]
    assert all(stack.job(job_id_for(ep.bucket, key, etag)) is None for key, etag in etags.items())
    depths = stack.queue_depths()
    assert all(depths[dlq] == 0 for dlq in stack.dead_letter_queues()), depths
