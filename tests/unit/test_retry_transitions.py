"""The operator-retry rows of the job state machine (`cutout retry`), one transition at a time, over moto server.

Kept apart from test_job_transitions.py (whose givens it reuses) so the retry moves read as one block: reopen a
failed job, and the claim / release / reject moves that a reopened (`retry_pending`) job allows.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cutout.domain.job import Job, parse_time
from cutout.domain.models import CONFIGURATION_REJECTIONS, JobStatus
from cutout.store.job_store import JobStore

from tests.unit.conftest import Clock
from tests.unit.test_job_transitions import JOB, SOURCE, _job, ambiguous, claimed, completed, queued, rendering


def failed(store: JobStore, status: JobStatus = JobStatus.ERROR) -> Job:
    queued(store)
    assert store.fail(JOB, status, "render_error", "the model failed")
    return _job(store)


def reopened(store: JobStore, clock: Clock) -> Job:
    failed(store)
    clock.advance(60)
    assert store.reopen_for_retry(JOB).ok
    return _job(store)


# ----- reopen_for_retry: error | timed_out | canceled → retry_pending -------------------------------------------
@pytest.mark.parametrize("status", [JobStatus.ERROR, JobStatus.TIMED_OUT, JobStatus.CANCELED])
def test_reopen_moves_a_failed_job_to_retry_pending_with_its_outcome_in_history(
    store: JobStore, clock: Clock, status: JobStatus
) -> None:
    before = failed(store, status)
    clock.advance(60)

    result = store.reopen_for_retry(JOB)

    job = _job(store)
    assert result.ok
    assert result.job == job
    assert job.status == JobStatus.RETRY_PENDING
    assert job.attempts == 2
    assert job.history == [
        {
            "status": status.value,
            "error_code": "render_error",
            "error_message": "the model failed",
            "project_id": "p1",
            "credits_charged": 5,
            "started_at": before.created_at,
            "ended_at": before.updated_at,
        }
    ]
    assert (job.error_code, job.project_id, job.credits_charged, job.expires_at) == (None, None, None, None)
    assert set(job.reached) == {JobStatus.RETRY_PENDING}  # the next attempt stamps its own queued_at, ...
    assert job.previous_project_ids == {"p1"}


@pytest.mark.parametrize(
    ("given", "reason"),
    [(claimed, "in_flight"), (queued, "in_flight"), (rendering, "in_flight"), (completed, "complete")],
)
def test_reopen_refuses_a_job_in_flight_or_complete(
    store: JobStore, given: Callable[[JobStore], object], reason: str
) -> None:
    given(store)
    before = _job(store)

    result = store.reopen_for_retry(JOB)

    assert (result.ok, result.reason) == (False, reason)
    assert _job(store) == before


def test_reopen_refuses_a_missing_rejected_or_already_reopened_job(store: JobStore, clock: Clock) -> None:
    assert store.reopen_for_retry(JOB).reason == "not_found"
    reopened(store, clock)
    assert store.reopen_for_retry(JOB).reason == "retry_pending"
    assert store.reject(JOB, SOURCE, "not_an_image", "the bytes are not a recognised image format")
    assert store.reopen_for_retry(JOB).reason == "rejected"  # the file's own fault: a new upload fixes it


@pytest.mark.parametrize("code", sorted(CONFIGURATION_REJECTIONS))
def test_reopen_takes_a_rejection_the_configuration_caused_keeping_it_in_history(
    store: JobStore, clock: Clock, code: str
) -> None:
    assert store.reject(JOB, SOURCE, code, "background 'backgrounds/white.png' does not exist")
    before = _job(store)
    clock.advance(60)

    result = store.reopen_for_retry(JOB)

    job = _job(store)
    assert result.ok
    assert job.status == JobStatus.RETRY_PENDING
    assert job.attempts == 2
    assert job.history == [
        {
            "status": "rejected",
            "error_code": code,
            "error_message": "background 'backgrounds/white.png' does not exist",
            "started_at": before.created_at,
            "ended_at": before.updated_at,
        }
    ]
    assert job.error_code is None
    assert job.expires_at is None  # no longer terminal: the TTL would delete a job that is about to be retried


def test_reopen_takes_an_ambiguous_create_only_when_allowed(store: JobStore) -> None:
    ambiguous(store)

    refused = store.reopen_for_retry(JOB)
    allowed = store.reopen_for_retry(JOB, allow_ambiguous=True)

    assert (refused.ok, refused.reason) == (False, "ambiguous")
    assert allowed.ok
    job = _job(store)
    assert job.ambiguous is None
    assert (job.history or [{}])[0]["ambiguous"] is True


def test_a_second_reopen_appends_to_the_history(store: JobStore, clock: Clock) -> None:
    reopened(store, clock)
    assert store.mark_queued(JOB, claimed(store), "p2", 5)
    assert store.fail(JOB, JobStatus.TIMED_OUT, "timed_out", "late")

    assert store.reopen_for_retry(JOB).ok

    job = _job(store)
    assert job.attempts == 3
    assert [(h["status"], h["project_id"]) for h in job.history or []] == [("error", "p1"), ("timed_out", "p2")]


# ----- what a reopened job allows ---------------------------------------------------------------------------------
def test_claim_takes_a_reopened_job_once_keeping_attempts_and_history(store: JobStore, clock: Clock) -> None:
    reopened(store, clock)
    clock.advance(5)

    first = store.claim(JOB, SOURCE)
    second = store.claim(JOB, SOURCE)

    job = _job(store)
    assert first.won
    assert not second.won
    assert second.existing == job
    assert job.status == JobStatus.SUBMITTING
    assert job.claim_token == first.token
    assert job.claimed_at == "2026-01-02T03:05:10.000Z"
    assert (job.attempts, len(job.history or [])) == (2, 1)


def test_a_retried_record_keeps_its_upload_time_and_records_when_the_attempt_started(
    store: JobStore, clock: Clock
) -> None:
    # given a job uploaded, failed and reopened a minute later
    upload = failed(store)
    clock.advance(60)
    assert store.reopen_for_retry(JOB).ok
    reopened_at = _job(store).updated_at

    # when the submit claims it, it fails again and is reopened once more
    clock.advance(5)
    assert store.mark_queued(JOB, claimed(store), "p2", 5)
    assert store.fail(JOB, JobStatus.TIMED_OUT, "timed_out", "late")
    clock.advance(60)
    assert store.reopen_for_retry(JOB).ok

    # then created_at is still the upload's, and each history entry spans its own attempt, in order
    job = _job(store)
    assert job.created_at == upload.created_at
    assert job.attempt_started_at == job.updated_at  # the third attempt starts at the second reopen
    assert job.created == parse_time(job.attempt_started_at)  # latency and staleness count from the attempt
    first, second = job.history or []
    assert (first["started_at"], first["ended_at"]) == (upload.created_at, upload.updated_at)
    assert second["started_at"] == reopened_at
    assert first["ended_at"] < second["started_at"] < second["ended_at"]


@pytest.mark.parametrize("move", ["wait", "reject"])
def test_a_reopened_job_keeps_its_upload_time_when_it_waits_or_is_rejected(
    store: JobStore, clock: Clock, move: str
) -> None:
    upload = failed(store)
    clock.advance(60)
    assert store.reopen_for_retry(JOB).ok
    clock.advance(5)

    if move == "wait":
        assert store.wait(JOB, SOURCE).won
    else:
        assert store.reject(JOB, SOURCE, "object_missing", "gone")

    assert _job(store).created_at == upload.created_at


def test_late_moves_of_the_previous_attempt_leave_a_reopened_job_alone(store: JobStore, clock: Clock) -> None:
    before = reopened(store, clock)

    moved = [
        store.mark_progress(JOB, JobStatus.RENDERING, "p1"),
        store.fail(JOB, JobStatus.ERROR, "render_error", "again"),
        store.mark_ambiguous(JOB, "stale"),
        store.begin_finalize(JOB, "lease", 120),
        store.complete(JOB, "lease", {"output_key": "cutouts/a.png"}),
    ]

    assert not any(moved), moved
    assert _job(store) == before


def test_release_claim_returns_a_retried_job_to_retry_pending(store: JobStore, clock: Clock) -> None:
    reopened(store, clock)
    token = claimed(store)

    store.release_claim(JOB, "someone-else")
    assert _job(store).status == JobStatus.SUBMITTING
    store.release_claim(JOB, token)

    job = _job(store)
    assert job.status == JobStatus.RETRY_PENDING
    assert (job.claim_token, job.claimed_at, job.attempts) == (None, None, 2)
    assert store.claim(JOB, SOURCE).won


def test_reject_ends_a_reopened_job_in_place_keeping_its_history(store: JobStore, clock: Clock) -> None:
    reopened(store, clock)

    assert store.reject(JOB, SOURCE, "object_missing", "the object no longer exists")

    job = _job(store)
    assert job.status == JobStatus.REJECTED
    assert job.error_code == "object_missing"
    assert job.expires_at is not None
    assert len(job.history or []) == 1
    assert not store.reject(JOB, SOURCE, "not_an_image", "again")


def test_a_reopened_job_round_trips_through_its_plain_record(store: JobStore, clock: Clock) -> None:
    job = reopened(store, clock)
    assert Job.from_record(job.to_record()) == job
