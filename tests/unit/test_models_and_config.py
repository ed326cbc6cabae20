from __future__ import annotations

import json

import pytest
from cutout.aws.inspection import sniff_image
from cutout.domain.errors import InvalidEnvironment, InvalidOutput
from cutout.domain.models import RANK, JobStatus, job_id_for, job_id_from_project_name, output_key_for, project_name
from cutout.magic_hour.download import check_png
from cutout.runtime.config import Settings

from tests.support.images import PDF_BYTES, image_bytes


def test_job_id_is_deterministic_and_content_addressed() -> None:
    a = job_id_for("b", "incoming/x.png", '"abc"')
    assert a == job_id_for("b", "incoming/x.png", "abc")  # quoted or not, as S3 APIs disagree
    assert a != job_id_for("b", "incoming/x.png", "abd")
    assert a != job_id_for("b", "incoming/y.png", "abc")
    assert len(a) == 32


def test_project_name_round_trips_and_rejects_strangers() -> None:
    jid = job_id_for("b", "k", "e")
    assert job_id_from_project_name(project_name(jid)) == jid
    assert job_id_from_project_name("Background Remover - 2026") is None
    assert job_id_from_project_name("cutout:not-hex") is None
    assert job_id_from_project_name(None) is None


def test_states_only_move_forward() -> None:
    assert RANK[JobStatus.SUBMITTING] < RANK[JobStatus.QUEUED] < RANK[JobStatus.RENDERING] < RANK[JobStatus.COMPLETE]
    assert RANK[JobStatus.COMPLETE] == RANK[JobStatus.ERROR] == RANK[JobStatus.TIMED_OUT]
    # waiting (for an in-flight slot) comes before anything that costs money, and is not terminal
    assert RANK[JobStatus.WAITING] < RANK[JobStatus.SUBMITTING]


def test_output_key_mirrors_the_input_path() -> None:
    assert output_key_for("incoming/a/b c.jpg", "incoming/", "cutouts/") == "cutouts/a/b c.png"
    assert output_key_for("incoming/x.png", "incoming/", "out/") == "out/x.png"


def test_png_check_needs_signature_header_and_trailer() -> None:
    png = image_bytes("PNG")
    check_png(png[:64], png[-16:])
    with pytest.raises(InvalidOutput):
        check_png(b"<html>" + png[6:64], png[-16:])
    with pytest.raises(InvalidOutput):
        check_png(png[:64], png[-40:-20])  # truncated


def test_magic_bytes_sniffing() -> None:
    assert sniff_image(image_bytes("PNG")[:64]) == "png"
    assert sniff_image(image_bytes("JPEG")[:64]) == "jpeg"
    assert sniff_image(image_bytes("WEBP")[:64]) == "webp"
    assert sniff_image(PDF_BYTES[:64]) is None


def test_settings_normalise_and_refuse_recursion() -> None:
    s = Settings.from_env({"JOBS_TABLE": "t", "INPUT_PREFIX": "/in", "OUTPUT_PREFIX": "out"})
    assert (s.input_prefix, s.output_prefix) == ("in/", "out/")
    with pytest.raises(InvalidEnvironment):
        Settings.from_env({"JOBS_TABLE": "t", "INPUT_PREFIX": "same/", "OUTPUT_PREFIX": "same/"})
    with pytest.raises(InvalidEnvironment):
        Settings.from_env({"INPUT_PREFIX": "in/"})
    with pytest.raises(InvalidEnvironment):
        Settings.from_env({"JOBS_TABLE": "t", "ASSET_TRANSFER": "carrier-pigeon"})
    assert Settings.from_env({"JOBS_TABLE": "t", "POLL_MAX_DELAY_SECONDS": "5000"}).poll_max_delay_seconds == 900


def test_a_budget_needs_the_ingest_queue_url_to_park_uploads() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/cutout-ingest"
    s = Settings.from_env({"JOBS_TABLE": "t", "DAILY_CREDIT_BUDGET": "10", "INGEST_QUEUE_URL": url})
    assert (s.daily_credit_budget, s.ingest_queue_url) == (10, url)
    assert Settings.from_env({"JOBS_TABLE": "t"}).ingest_queue_url == ""  # no budget, no parking
    with pytest.raises(InvalidEnvironment, match="INGEST_QUEUE_URL is required"):
        Settings.from_env({"JOBS_TABLE": "t", "DAILY_CREDIT_BUDGET": "10"})
    with pytest.raises(InvalidEnvironment, match="queue URL"):
        Settings.from_env({"JOBS_TABLE": "t", "INGEST_QUEUE_URL": "arn:aws:sqs:us-east-1:123456789012:cutout-ingest"})


def test_admission_is_configured_by_max_jobs_in_flight() -> None:
    assert Settings.from_env({"JOBS_TABLE": "t"}).max_jobs_in_flight == 0  # unset: off (the template sets it)
    assert Settings.from_env({"JOBS_TABLE": "t", "MAX_JOBS_IN_FLIGHT": "5"}).max_jobs_in_flight == 5
    with pytest.raises(InvalidEnvironment, match="<= 99"):
        Settings.from_env({"JOBS_TABLE": "t", "MAX_JOBS_IN_FLIGHT": "100"})
    with pytest.raises(InvalidEnvironment, match="integer"):
        Settings.from_env({"JOBS_TABLE": "t", "MAX_JOBS_IN_FLIGHT": "three"})


def test_a_dispatch_message_is_told_from_an_s3_event_and_carries_its_suspect() -> None:
    from cutout.domain.messages import DispatchMessage

    # given: a plain wake-up, one naming the job whose unknown outcome's bound has passed, and an S3 event
    plain = DispatchMessage("finished")
    named = DispatchMessage("unknown_outcome_bound", "job-1")
    s3_event = json.dumps({"detail-type": "Object Created", "detail": {"object": {"key": "cutout.png"}}})

    # when / then: each survives the queue as itself, and the S3 event is not taken for a wake-up
    assert DispatchMessage.from_json(plain.to_json()) == plain
    assert DispatchMessage.from_json(named.to_json()) == named
    assert DispatchMessage.from_json(s3_event) is None
    assert DispatchMessage.from_json('{"cutout": "dispatch", "suspect": 7}') == DispatchMessage("")
