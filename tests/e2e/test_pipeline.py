"""Cutout end to end on the local stack: template.yaml's resources in moto, the real handlers, the emulator.

upload → EventBridge → ingest queue → submit → Magic Hour (emulator) → webhook and/or poll → completion queue
→ finalize → cutout PNG in S3 → job record complete.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cutout_dev.local_stack import LocalStack

MakeStack = Callable[..., LocalStack]


def _assert_cutout(stack: LocalStack, job: dict[str, Any]) -> None:
    ep = stack.endpoints
    assert job["status"] == "complete", job
    key = str(job["output_key"])
    assert key.startswith(ep.output_prefix)
    bucket = str(job.get("output_bucket") or ep.output_bucket)
    data = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    assert img.mode == "RGBA"
    low, high = img.getchannel("A").getextrema()  # type: ignore[misc]
    assert low == 0  # background removed
    assert high == 255  # subject kept


def _ok_invocations(stack: LocalStack, function: str) -> int:
    return sum(1 for i in stack.invocations if i.function == function and i.error is None)


def test_upload_to_cutout_with_webhooks(make_stack: MakeStack, samples: dict[str, Path]) -> None:
    stack = make_stack(webhooks=True)
    flower = stack.upload(samples["red flower.png"])
    cafe = stack.upload(samples["café (1).jpg"])
    notes = stack.upload(samples["notes.jpg"])
    again = stack.upload(samples["red flower.png"])  # same bytes, same key: the same job
    assert again.job_id == flower.job_id

    jobs = stack.wait_for_terminal([flower, cafe, notes], timeout=60)
    _assert_cutout(stack, jobs[flower.job_id])
    _assert_cutout(stack, jobs[cafe.job_id])
    assert jobs[cafe.job_id]["source_key"] == "incoming/café (1).jpg"
    assert jobs[notes.job_id]["status"] == "rejected"
    assert not jobs[notes.job_id].get("credits_charged")

    stack.emulator.wait_until(stack.quiescent, timeout=15)
    names = [c.name for c in stack.emulator.state.creates]
    assert names.count(f"cutout:{flower.job_id}") == 1  # the duplicate upload created nothing
    assert len(names) == 2  # and the non-image never reached Magic Hour
    assert _ok_invocations(stack, "WebhookFunction") >= 2
    assert any(a.status_code and 200 <= a.status_code < 300 for a in stack.emulator.state.webhook_attempts)


def test_upload_to_cutout_polling_only(make_stack: MakeStack, samples: dict[str, Path]) -> None:
    stack = make_stack(webhooks=False)
    leaf = stack.upload(samples["green leaf.webp"])
    star = stack.upload(samples["étoile+1.png"])

    jobs = stack.wait_for_terminal([leaf, star], timeout=60)
    _assert_cutout(stack, jobs[leaf.job_id])
    _assert_cutout(stack, jobs[star.job_id])
    assert jobs[star.job_id]["source_key"] == "incoming/étoile+1.png"
    assert stack.function_url.requests == 0
    assert not stack.emulator.state.webhook_attempts
    # Both results came through status checks: at least one GET per project (a count of poll invocations would
    # depend on whether both poll messages arrived in one SQS batch).
    assert stack.emulator.state.requests["get"] >= 2
    assert _ok_invocations(stack, "PollFunction") >= 1


def test_poisoned_completion_dead_letters_then_redrive_completes(
    make_stack: MakeStack, samples: dict[str, Path]
) -> None:
    # Completion messages come back after 1 s instead of 6 minutes; maxReceiveCount stays the template's.
    stack = make_stack(webhooks=True, visibility_timeout_seconds={"CompletionQueue": 1})
    attempts: list[int] = []
    lock = threading.Lock()

    def broken_dependency(event: Any) -> None:
        with lock:
            attempts.append(len(event["Records"]))
        raise ConnectionError("S3 unavailable")  # e.g. the output write failing, every time

    finalize = stack.functions["FinalizeFunction"]
    finalize.fault = broken_dependency
    up = stack.upload(samples["red flower.png"])

    def dead_lettered() -> bool:
        return stack.queue_depths()["CompletionDLQ"] >= 1

    stack.emulator.wait_until(dead_lettered, timeout=30, interval=0.2)
    job = stack.job(up.job_id)
    assert job is not None
    assert job["status"] != "complete"
    assert len(attempts) >= 5  # maxReceiveCount deliveries before the move

    finalize.fault = None  # the dependency recovers
    stack.emulator.wait_until(lambda: stack.queue_depths()["CompletionQueue"] == 0, timeout=10)
    moved = stack.redrive("CompletionDLQ")
    assert moved >= 1
    jobs = stack.wait_for_terminal([up], timeout=20)
    _assert_cutout(stack, jobs[up.job_id])
    assert stack.queue_depths()["CompletionDLQ"] == 0


@pytest.mark.parametrize("key", ["incoming/sub dir/ünïcode + plus.png"])
def test_keys_are_decoded_once(make_stack: MakeStack, samples: dict[str, Path], key: str) -> None:
    stack = make_stack(webhooks=True)
    up = stack.upload(samples["red flower.png"].read_bytes(), key)
    job = stack.wait_for_terminal([up], timeout=30)[up.job_id]
    assert job["source_key"] == key
    _assert_cutout(stack, job)
