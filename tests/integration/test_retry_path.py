"""A retried job through the real handlers (moto server + the emulator): the retry's event is claimed like an upload,
and the previous attempt's late messages (a pending status check, a redelivered webhook) leave the new attempt
alone."""

from __future__ import annotations

from typing import Any

from cutout.domain.models import JobStatus
from cutout.store.job_store import JobStore

from tests.conftest import INPUT_PREFIX, OUTPUT_PREFIX, Aws
from tests.integration.test_completion_path import deliver, fns, run_queue, submit, wait_project
from tests.support.images import image_bytes
from tests.support.roles import function_role, operator

__all__ = ["fns"]  # the handlers fixture, shared with the completion path's tests


def test_a_retried_job_completes_and_ignores_its_previous_attempt(aws: Aws, emulator: Any, fns: dict[str, Any]) -> None:
    # given a job that timed out just before its project finished (its first status check still queued)
    body = image_bytes("PNG", size=(40, 30))
    key = INPUT_PREFIX + "retry/chair.png"
    first = submit(aws, fns, key, body)
    old_payload = wait_project(emulator, first["project_id"])
    store = JobStore(aws.table, aws.client("dynamodb"))
    with function_role("sweeper"):  # the sweep times out a job whose result never came
        assert store.fail(first["job_id"], JobStatus.TIMED_OUT, "timed_out", "no result in time")

    # when the operator reopens it, and the old attempt's check and its late webhook arrive
    with operator():
        assert store.reopen_for_retry(first["job_id"]).ok
    assert run_queue(aws, fns, aws.poll_queue_url, "poll") == {"batchItemFailures": []}
    deliver(fns, "image.completed", old_payload)
    assert run_queue(aws, fns, aws.completion_queue_url, "finalize") == {"batchItemFailures": []}

    # then the job still waits for its retry, untouched, and no cutout was written for the old project
    with operator():  # `cutout status` reads it
        waiting = store.get(first["job_id"])
    assert waiting is not None
    assert waiting.status == JobStatus.RETRY_PENDING
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=OUTPUT_PREFIX)

    # when the retry's event is submitted and its project completes (and the old project's news comes once more)
    retried = submit(aws, fns, key, body)
    payload = wait_project(emulator, retried["project_id"])
    deliver(fns, "image.completed", payload)
    run_queue(aws, fns, aws.completion_queue_url, "finalize")
    deliver(fns, "image.completed", old_payload)
    assert run_queue(aws, fns, aws.completion_queue_url, "finalize") == {"batchItemFailures": []}

    # then the same record is complete through a second project, its first attempt kept in the history
    with operator():
        done = store.get(first["job_id"])
    assert done is not None
    assert retried["job_id"] == first["job_id"]
    assert done.status == JobStatus.COMPLETE
    assert done.project_id == retried["project_id"] != first["project_id"]
    assert done.attempts == 2
    assert [(h["status"], h["project_id"]) for h in done.history or []] == [("timed_out", first["project_id"])]
    assert len(emulator.engine.state.creates) == 2
