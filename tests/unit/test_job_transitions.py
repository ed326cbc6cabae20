"""The job state machine, one transition at a time, over moto server (DynamoDB's real conditional writes).

Each test: given a job in some state, when one named transition runs, then the job is in the expected state —
or the transition is refused (False) and the record is unchanged.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cutout.domain.job import Job, SourceObject
from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, JobStatus
from cutout.store.job_store import JobStore

from tests.unit.conftest import T0, Clock

JOB = "0123456789abcdef0123456789abcdef"
SOURCE = SourceObject("bucket", "incoming/a.png", '"etag"', None, 123)


def _job(store: JobStore) -> Job:
    job = store.get(JOB)
    assert job is not None
    return job


# ----- givens: each state reached the way the pipeline reaches it ------------------------------------------------
def claimed(store: JobStore) -> str:
    claim = store.claim(JOB, SOURCE)
    assert claim.won
    return claim.token


def queued(store: JobStore, project: str = "p1") -> None:
    assert store.mark_queued(JOB, claimed(store), project, 5)


def rendering(store: JobStore, project: str = "p1") -> None:
    queued(store, project)
    assert store.mark_progress(JOB, JobStatus.RENDERING, project)


def ambiguous(store: JobStore) -> None:
    claimed(store)
    assert store.mark_ambiguous(JOB, "read timeout after sending")


def completed(store: JobStore) -> None:
    rendering(store)
    assert store.begin_finalize(JOB, "lease", 120)
    assert store.complete(JOB, "lease", {"output_key": "cutouts/a.png", "completed_at": "2026-01-02T03:04:05.000Z"})


# ----- claim / release / reject ------------------------------------------------------------------------------------
def test_claim_inserts_a_submitting_record_once(store: JobStore) -> None:
    first = store.claim(JOB, SOURCE)
    second = store.claim(JOB, SOURCE)

    assert first.won and not second.won
    job = _job(store)
    assert second.existing == job
    assert job.status == JobStatus.SUBMITTING and job.claim_token == first.token
    assert job.source_etag == "etag" and job.source_size == 123
    assert job.claimed == T0 and job.reached[JobStatus.SUBMITTING] == "2026-01-02T03:04:05.000Z"


def test_release_claim_deletes_only_our_own_claim(store: JobStore) -> None:
    token = claimed(store)

    store.release_claim(JOB, "someone-else")
    assert _job(store).status == JobStatus.SUBMITTING

    store.release_claim(JOB, token)
    assert store.get(JOB) is None
    assert store.claim(JOB, SOURCE).won  # a retry may claim again


def test_reject_records_a_refused_upload_unless_a_job_exists(store: JobStore, clock: Clock) -> None:
    assert store.reject(JOB, SOURCE, "too_large", "x" * 5000)

    job = _job(store)
    assert job.status == JobStatus.REJECTED and job.is_terminal
    assert job.error_code == "too_large" and len(job.error_message or "") == 1000
    assert job.expires_at == int((T0 + timedelta(days=90)).timestamp())
    assert not store.reject(JOB, SOURCE, "other", "again")
    assert _job(store).error_code == "too_large"


def test_reject_never_overwrites_a_claim(store: JobStore) -> None:
    claimed(store)
    assert not store.reject(JOB, SOURCE, "too_large", "late")
    assert _job(store).status == JobStatus.SUBMITTING


def test_reject_by_magic_hour_ends_our_claim_rejected(store: JobStore) -> None:
    token = claimed(store)

    assert not store.reject_by_magic_hour(JOB, "not-ours", "http_422", "bad input")
    assert store.reject_by_magic_hour(JOB, token, "http_422", "bad input")

    job = _job(store)
    assert (job.status, job.error_code, job.claim_token) == (JobStatus.REJECTED, "http_422", None)


# ----- recording the create ----------------------------------------------------------------------------------------
def test_mark_queued_records_the_create_for_the_claim_owner_only(store: JobStore, clock: Clock) -> None:
    token = claimed(store)
    clock.advance(2)

    assert not store.mark_queued(JOB, "not-ours", "p1", 5)
    assert _job(store).status == JobStatus.SUBMITTING
    assert store.mark_queued(JOB, token, "p1", 5)

    job = _job(store)
    assert (job.status, job.project_id, job.credits_charged, job.claim_token) == (JobStatus.QUEUED, "p1", 5, None)
    assert job.submitted_at == "2026-01-02T03:04:07.000Z" and JobStatus.QUEUED in job.reached


def test_mark_queued_adopts_a_claim_resolved_as_ambiguous_meanwhile(store: JobStore) -> None:
    token = claimed(store)
    assert store.mark_ambiguous(JOB, "stale claim")

    assert store.mark_queued(JOB, token, "p1", 5)

    job = _job(store)
    assert (job.status, job.project_id, job.ambiguous, job.error_code) == (JobStatus.QUEUED, "p1", True, None)
    assert job.expires_at is None


def test_mark_ambiguous_moves_an_in_flight_job_to_a_placeholder_error(store: JobStore) -> None:
    claimed(store)

    assert store.mark_ambiguous(JOB, "read timeout after sending")

    job = _job(store)
    assert job.is_ambiguous and job.is_unadopted_ambiguous and job.ambiguous is True
    assert job.claim_token is None and job.expires_at is not None


def test_mark_ambiguous_leaves_a_finished_job_alone(store: JobStore) -> None:
    completed(store)
    assert not store.mark_ambiguous(JOB, "late")
    assert _job(store).status == JobStatus.COMPLETE


# ----- progress --------------------------------------------------------------------------------------------------
def test_mark_progress_moves_forward_for_the_jobs_own_project(store: JobStore) -> None:
    queued(store, "p1")

    assert not store.mark_progress(JOB, JobStatus.RENDERING, "another-project")
    assert store.mark_progress(JOB, JobStatus.RENDERING, "p1")
    assert not store.mark_progress(JOB, JobStatus.QUEUED, "p1")  # never backwards

    job = _job(store)
    assert job.status == JobStatus.RENDERING
    assert {JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.RENDERING} <= set(job.reached)


def test_mark_progress_with_require_project_needs_a_recorded_project(store: JobStore) -> None:
    claimed(store)  # no project yet
    assert not store.mark_progress(JOB, JobStatus.RENDERING, "p1", require_project=True)
    assert _job(store).status == JobStatus.SUBMITTING


def test_progress_is_only_queued_or_rendering(store: JobStore) -> None:
    with pytest.raises(ValueError, match="progress"):
        store.mark_progress(JOB, JobStatus.COMPLETE, "p1")


def test_adopt_ambiguous_gives_the_job_to_the_project_that_reported_in(store: JobStore) -> None:
    ambiguous(store)

    assert store.adopt_ambiguous(JOB, JobStatus.RENDERING, "p9", 5)

    job = _job(store)
    assert (job.status, job.project_id, job.ambiguous) == (JobStatus.RENDERING, "p9", True)
    assert job.error_code is None and job.expires_at is None


def test_adopt_ambiguous_refuses_a_real_failure(store: JobStore) -> None:
    rendering(store)
    assert store.fail(JOB, JobStatus.ERROR, "render_error", "failed")

    assert not store.adopt_ambiguous(JOB, JobStatus.RENDERING, "p1", 5)
    assert _job(store).error_code == "render_error"


# ----- failures --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [JobStatus.ERROR, JobStatus.CANCELED, JobStatus.TIMED_OUT])
def test_fail_ends_an_in_flight_job_with_code_and_message(store: JobStore, status: JobStatus) -> None:
    rendering(store)
    assert store.begin_finalize(JOB, "lease", 120)

    assert store.fail(JOB, status, "some_code", "what happened", credits_refunded=True)

    job = _job(store)
    assert (job.status, job.error_code, job.error_message) == (status, "some_code", "what happened")
    assert job.credits_refunded is True and job.finalize_token is None and job.finalize_until is None
    assert job.is_terminal and status in job.reached


def test_fail_never_reopens_a_finished_job(store: JobStore) -> None:
    completed(store)
    assert not store.fail(JOB, JobStatus.TIMED_OUT, "timed_out", "late")
    assert _job(store).status == JobStatus.COMPLETE


def test_fail_while_adopting_replaces_the_ambiguous_placeholder(store: JobStore) -> None:
    ambiguous(store)

    assert not store.fail(JOB, JobStatus.CANCELED, "canceled", "canceled at Magic Hour")
    assert store.fail(JOB, JobStatus.CANCELED, "canceled", "canceled at Magic Hour", adopting=True, project_id="p9")

    job = _job(store)
    assert (job.status, job.error_code, job.project_id) == (JobStatus.CANCELED, "canceled", "p9")


def test_failure_is_error_canceled_or_timed_out(store: JobStore) -> None:
    with pytest.raises(ValueError, match="failure"):
        store.fail(JOB, JobStatus.COMPLETE, "x", "y")


# ----- the finalize lease and completion -------------------------------------------------------------------------
def test_begin_finalize_gives_one_lease_at_a_time_until_it_expires(store: JobStore, clock: Clock) -> None:
    rendering(store)

    assert store.begin_finalize(JOB, "first", 120)
    assert not store.begin_finalize(JOB, "second", 120)
    clock.advance(121)
    assert store.begin_finalize(JOB, "second", 120)
    assert _job(store).finalize_token == "second"


def test_begin_finalize_takes_an_ambiguous_job_only_when_adopting(store: JobStore) -> None:
    ambiguous(store)
    assert not store.begin_finalize(JOB, "lease", 120)
    assert store.begin_finalize(JOB, "lease", 120, adopt_ambiguous=True)


def test_begin_finalize_refuses_a_finished_job(store: JobStore) -> None:
    completed(store)
    assert not store.begin_finalize(JOB, "again", 120)


def test_end_finalize_gives_back_only_our_own_lease(store: JobStore) -> None:
    rendering(store)
    assert store.begin_finalize(JOB, "mine", 120)

    store.end_finalize(JOB, "not-mine")
    assert _job(store).finalize_token == "mine"
    store.end_finalize(JOB, "mine")
    assert _job(store).finalize_token is None
    assert store.begin_finalize(JOB, "next", 120)


def test_complete_is_for_the_lease_holder_once(store: JobStore, clock: Clock) -> None:
    rendering(store)
    assert store.begin_finalize(JOB, "lease", 120)

    assert not store.complete(JOB, "not-the-lease", {"output_key": "x"})
    assert store.complete(JOB, "lease", {"output_key": "cutouts/a.png", "output_size": 10})
    assert not store.complete(JOB, "lease", {"output_key": "again"})

    job = _job(store)
    assert (job.status, job.output_key, job.output_size) == (JobStatus.COMPLETE, "cutouts/a.png", 10)
    assert job.finalize_token is None and job.error_code is None and job.expires_at is not None


# ----- history and the typed record ------------------------------------------------------------------------------
def test_each_status_keeps_the_time_it_was_first_reached(store: JobStore, clock: Clock) -> None:
    token = claimed(store)
    clock.advance(1)
    assert store.mark_queued(JOB, token, "p1", 5)
    clock.advance(1)
    assert store.mark_progress(JOB, JobStatus.RENDERING, "p1")
    clock.advance(1)
    assert not store.mark_progress(JOB, JobStatus.RENDERING, "p1")  # refused: not forward, so no new stamp

    reached = _job(store).reached
    assert reached[JobStatus.SUBMITTING] == "2026-01-02T03:04:05.000Z"
    assert reached[JobStatus.QUEUED] == "2026-01-02T03:04:06.000Z"
    assert reached[JobStatus.RENDERING] == "2026-01-02T03:04:07.000Z"


def test_job_round_trips_through_its_plain_record(store: JobStore) -> None:
    completed(store)
    job = _job(store)

    record = job.to_record()

    assert Job.from_record(record) == job
    assert record["status"] == "complete" and record["complete_at"] and "reached" not in record
    assert job.error_code != CREATE_OUTCOME_UNKNOWN and not job.is_ambiguous


# ----- admission: waiting, dispatch, back to waiting, a late result ----------------------------------------------
def waiting(store: JobStore) -> None:
    assert store.wait(JOB, SOURCE).won


def test_wait_inserts_a_waiting_record_once_and_never_over_a_claim(store: JobStore) -> None:
    first = store.wait(JOB, SOURCE)
    second = store.wait(JOB, SOURCE)
    assert first.won and not second.won
    assert second.existing is not None and second.existing.status == JobStatus.WAITING
    job = _job(store)
    assert job.status == JobStatus.WAITING
    assert job.claim_token is None and job.slot is None  # nothing presigned, nothing claimed, nothing spent


def test_dispatch_turns_a_waiting_job_into_a_claim_once(store: JobStore, clock: Clock) -> None:
    waiting(store)
    clock.advance(3600)  # it waited an hour for a slot
    token = store.dispatch(JOB, "slot#1")
    assert token is not None
    assert store.dispatch(JOB, "slot#2") is None  # a second dispatcher loses
    job = _job(store)
    assert (job.status, job.claim_token, job.slot) == (JobStatus.SUBMITTING, token, "slot#1")
    assert job.claimed == T0 + timedelta(seconds=3600)  # the claim counts from the dispatch, not the upload


def test_dispatch_refuses_a_job_that_is_not_waiting(store: JobStore) -> None:
    queued(store)
    assert store.dispatch(JOB, "slot#0") is None
    assert _job(store).status == JobStatus.QUEUED


def test_back_to_waiting_is_for_our_own_claim_only(store: JobStore) -> None:
    waiting(store)
    token = store.dispatch(JOB, "slot#0")
    assert token is not None
    assert not store.back_to_waiting(JOB, "someone-else", "throttled_429")
    assert store.back_to_waiting(JOB, token, "throttled_429")
    job = _job(store)
    assert (job.status, job.claim_token, job.slot) == (JobStatus.WAITING, None, None)
    assert job.extra["waiting_reason"] == "throttled_429"
    assert not store.back_to_waiting(JOB, token, "again")  # not submitting any more


def test_a_late_result_may_finalize_a_timed_out_job_and_only_when_asked(store: JobStore) -> None:
    rendering(store)
    assert store.fail(JOB, JobStatus.TIMED_OUT, "timed_out", "no result after 30 checks")
    assert not store.begin_finalize(JOB, "lease", 120)  # an ordinary completion leaves it alone
    assert store.begin_finalize(JOB, "lease", 120, late=True)
    assert store.complete(JOB, "lease", {"late": True, "late_after_timeout_at": "2026-01-02T03:04:05.000Z"})
    job = _job(store)
    assert job.status == JobStatus.COMPLETE and job.late is True
    assert job.error_code is None


def test_a_late_result_never_finalizes_a_job_that_failed_for_real(store: JobStore) -> None:
    rendering(store)
    assert store.fail(JOB, JobStatus.ERROR, "render_error", "render failed")
    assert not store.begin_finalize(JOB, "lease", 120, late=True)
