"""The store's retry transition (`cutout retry`): a failed job is reopened, keeping its record and history, and the
submit's one claim takes it on — so a retry and a redelivered upload still create once. Over moto server."""

from __future__ import annotations

import pytest
from cutout.domain.job import Job, SourceObject
from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, JobStatus
from cutout.store.job_store import JobStore

from tests.conftest import INPUT_PREFIX, Aws
from tests.support.roles import StoreMovesAsItsFunctions

JOB = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def store(aws: Aws) -> JobStore:
    """Each move runs as the function that makes it in production (the reopen: the operator's `cutout retry`)."""
    return StoreMovesAsItsFunctions(JobStore(aws.table, client=aws.client("dynamodb")))  # type: ignore[return-value]


def _source(aws: Aws) -> SourceObject:
    return SourceObject(aws.bucket, INPUT_PREFIX + "shop/item 7.png", "etag-1", "v1", 1234)


def _failed(store: JobStore, aws: Aws, status: JobStatus = JobStatus.ERROR) -> Job:
    claim = store.claim(JOB, _source(aws))
    assert claim.won
    assert store.mark_queued(JOB, claim.token, "proj-1", 5)
    assert store.fail(JOB, status, "render_error", "the model failed")
    return _job(store)


def _ambiguous(store: JobStore, aws: Aws) -> Job:
    claim = store.claim(JOB, _source(aws))
    assert claim.won
    assert store.mark_ambiguous(JOB, "read timeout after sending")
    return _job(store)


def _job(store: JobStore) -> Job:
    job = store.get(JOB)
    assert job is not None
    return job


def test_reopen_keeps_the_previous_outcome_and_the_claim_takes_the_job_again(store: JobStore, aws: Aws) -> None:
    # given a job that failed at Magic Hour
    failed = _failed(store, aws)

    # when an operator reopens it
    result = store.reopen_for_retry(JOB)

    # then it waits for its claim, with the failure kept in its history and the outcome fields cleared
    assert result.ok
    assert result.reason == "reopened"
    job = _job(store)
    assert result.job == job
    assert job.status == JobStatus.RETRY_PENDING
    assert job.attempts == 2
    (entry,) = job.history or []
    assert entry["status"] == "error"
    assert entry["error_code"] == "render_error"
    assert entry["error_message"] == "the model failed"
    assert entry["project_id"] == "proj-1"
    assert entry["credits_charged"] == 5
    assert entry["started_at"] == failed.created_at
    assert entry["ended_at"] == failed.updated_at
    record = job.to_record()
    for cleared in ("error_code", "error_message", "project_id", "credits_charged", "expires_at", "queued_at"):
        assert cleared not in record
    assert job.source_key == failed.source_key

    # when the submit claims it (the retry's Object Created event), exactly one claim wins
    first = store.claim(JOB, _source(aws))
    second = store.claim(JOB, _source(aws))

    # then the record is a fresh attempt that kept its attempts and history
    assert first.won
    assert not second.won
    job = _job(store)
    assert job.status == JobStatus.SUBMITTING
    assert job.attempts == 2
    assert len(job.history or []) == 1
    assert job.source_version_id == "v1"
    assert job.created_at == failed.created_at  # the upload's time, not this attempt's
    assert job.attempt_started_at is not None
    assert job.attempt_started_at >= entry["ended_at"]  # this attempt began at the reopen


def test_a_second_retry_appends_to_the_history(store: JobStore, aws: Aws) -> None:
    # given a job that failed, was retried and timed out
    _failed(store, aws)
    assert store.reopen_for_retry(JOB).ok
    claim = store.claim(JOB, _source(aws))
    assert store.mark_queued(JOB, claim.token, "proj-2", 5)
    assert store.fail(JOB, JobStatus.TIMED_OUT, "timed_out", "late")

    # when it is retried again
    assert store.reopen_for_retry(JOB).ok

    # then both earlier outcomes are kept, oldest first
    job = _job(store)
    assert job.attempts == 3
    assert [(h["status"], h["project_id"]) for h in job.history or []] == [("error", "proj-1"), ("timed_out", "proj-2")]
    assert job.previous_project_ids == {"proj-1", "proj-2"}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (JobStatus.QUEUED, "in_flight"),
        (JobStatus.RENDERING, "in_flight"),
        (JobStatus.COMPLETE, "complete"),
    ],
)
def test_in_flight_and_complete_jobs_are_refused(store: JobStore, aws: Aws, status: JobStatus, reason: str) -> None:
    # given
    claim = store.claim(JOB, _source(aws))
    assert store.mark_queued(JOB, claim.token, "proj-1", 5)
    if status == JobStatus.RENDERING:
        assert store.mark_progress(JOB, status, "proj-1")
    if status == JobStatus.COMPLETE:
        assert store.begin_finalize(JOB, "lease", 120)
        assert store.complete(JOB, "lease", {"output_key": "cutouts/a.png"})

    # when
    result = store.reopen_for_retry(JOB)

    # then nothing changed
    assert not result.ok
    assert result.reason == reason
    job = _job(store)
    assert job.status == status
    assert job.history is None


def test_unknown_and_rejected_jobs_are_refused(store: JobStore, aws: Aws) -> None:
    assert store.reopen_for_retry(JOB).reason == "not_found"
    assert store.reject(JOB, _source(aws), "not_an_image", "a PDF")
    assert store.reopen_for_retry(JOB).reason == "rejected"


def test_an_ambiguous_create_is_reopened_only_when_allowed(store: JobStore, aws: Aws) -> None:
    # given a create whose outcome is unknown (it may have been paid)
    _ambiguous(store, aws)

    # when / then: refused by default, reopened when the operator accepts the risk
    refused = store.reopen_for_retry(JOB)
    assert not refused.ok
    assert refused.reason == "ambiguous"
    allowed = store.reopen_for_retry(JOB, allow_ambiguous=True)
    assert allowed.ok
    job = _job(store)
    assert job.ambiguous is None
    (entry,) = job.history or []
    assert entry["ambiguous"] is True  # the audit trail survives
    assert entry["error_code"] == CREATE_OUTCOME_UNKNOWN


def test_a_record_that_changed_since_it_was_read_is_not_reopened(store: JobStore, aws: Aws) -> None:
    # given a failed job whose record changes between the read and the conditional update
    _failed(store, aws)
    real_get = store.get

    def get_then_change(job_id: str) -> Job | None:
        job = real_get(job_id)
        aws.client("dynamodb").update_item(
            TableName=aws.table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="SET updated_at = :u",
            ExpressionAttributeValues={":u": {"S": "2099-01-01T00:00:00.000Z"}},
        )
        return job

    store.get = get_then_change  # type: ignore[method-assign]

    # when
    result = store.reopen_for_retry(JOB)

    # then
    assert not result.ok
    assert result.reason == "changed"


def test_a_late_message_of_the_previous_attempt_cannot_move_a_reopened_job(store: JobStore, aws: Aws) -> None:
    # given
    _failed(store, aws)
    assert store.reopen_for_retry(JOB).ok

    # when the old project's poll or webhook reports (forward-only updates)
    moved = [
        store.mark_progress(JOB, JobStatus.RENDERING, "proj-1"),
        store.fail(JOB, JobStatus.ERROR, "render_error", "again"),
        store.fail(JOB, JobStatus.TIMED_OUT, "timed_out", "late"),
        store.begin_finalize(JOB, "lease", 120),
    ]

    # then
    assert not any(moved), moved
    assert _job(store).status == JobStatus.RETRY_PENDING


def test_releasing_a_retry_claim_returns_it_to_retry_pending_with_its_history(store: JobStore, aws: Aws) -> None:
    # given a reopened job claimed by a submit whose create provably did not happen (e.g. the budget is spent)
    _failed(store, aws)
    assert store.reopen_for_retry(JOB).ok
    claim = store.claim(JOB, _source(aws))

    # when
    store.release_claim(JOB, claim.token)

    # then the record survives for the next delivery to claim
    job = _job(store)
    assert job.status == JobStatus.RETRY_PENDING
    assert job.attempts == 2
    assert job.claim_token is None
    assert store.claim(JOB, _source(aws)).won


def test_releasing_a_first_claim_still_deletes_it(store: JobStore, aws: Aws) -> None:
    claim = store.claim(JOB, _source(aws))
    store.release_claim(JOB, claim.token)
    assert store.get(JOB) is None


def test_a_retry_refused_by_the_checks_is_rejected_in_place(store: JobStore, aws: Aws) -> None:
    # given a reopened job whose object was deleted before the retry's event was processed
    _failed(store, aws)
    assert store.reopen_for_retry(JOB).ok

    # when the submit refuses it (object_missing) the way it refuses any upload
    assert store.reject(JOB, _source(aws), "object_missing", "the object no longer exists")

    # then the job is final, with its history, instead of waiting for ever
    job = _job(store)
    assert job.status == JobStatus.REJECTED
    assert job.error_code == "object_missing"
    assert len(job.history or []) == 1
    # and a job that is not waiting for a retry is still never overwritten
    assert not store.reject(JOB, _source(aws), "not_an_image", "again")
