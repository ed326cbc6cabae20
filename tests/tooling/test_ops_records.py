"""How the ops commands read a job record and a time window (plain functions; the table itself is covered in
tests/e2e/test_ops_cli.py against the local stack)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cutout_dev.ops.output import age
from cutout_dev.ops.records import days_back, detail, history, net_credits, parse_since

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("12h", NOW - timedelta(hours=12)),
        ("1d", NOW - timedelta(days=1)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:00:00+02:00", datetime(2026, 11, 1, 6, tzinfo=UTC)),
    ],
)
def test_since_takes_an_age_or_an_iso_time(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


def test_since_refuses_anything_else() -> None:
    with pytest.raises(ValueError, match="expected 30m"):
        parse_since("yesterday", NOW)


def test_credits_are_what_was_charged_minus_a_refund() -> None:
    assert net_credits({"credits_charged": 5}) == 5
    assert net_credits({"credits_charged": 5, "credits_refunded": True}) == 0  # the domain's flag
    assert net_credits({"credits_charged": 5, "credits_refunded": 5}) == 0  # an amount, should it become one
    assert net_credits({"credits_charged": 5, "credits_refunded": False}) == 5
    assert net_credits({}) == 0  # rejected before any create


def test_history_is_every_step_timestamp_oldest_first_without_bookkeeping() -> None:
    job = {
        "job_id": "j",
        "created_at": "2026-11-30T10:00:00.000Z",
        "completed_at": "2026-11-30T10:00:09.000Z",
        "submitted_at": "2026-11-30T10:00:01.000Z",
        "updated_at": "2026-11-30T10:00:09.000Z",
        "finalize_until": "2026-11-30T10:05:00.000Z",
        "expires_at": 1800000000,
    }
    assert [s["step"] for s in history(job)] == ["created", "submitted", "completed"]


def test_history_shows_one_step_per_moment_when_the_store_also_stamps_the_status() -> None:
    # given a record with both the named moments and the store's `<status>_at` stamps of the same moments
    job = {
        "created_at": "2026-11-30T10:00:00.000Z",
        "claimed_at": "2026-11-30T10:00:00.000Z",
        "submitting_at": "2026-11-30T10:00:00.000Z",
        "submitted_at": "2026-11-30T10:00:01.000Z",
        "queued_at": "2026-11-30T10:00:01.000Z",
        "rendering_at": "2026-11-30T10:00:03.000Z",
        "complete_at": "2026-11-30T10:00:09.001Z",
        "completed_at": "2026-11-30T10:00:09.000Z",
    }
    # then each moment is shown once, by its telling name
    assert [s["step"] for s in history(job)] == ["created", "claimed", "submitted", "rendering", "completed"]


def test_detail_keeps_earlier_attempts_when_the_record_has_them() -> None:
    earlier = [{"status": "error", "error_code": "http_422", "ended_at": "2026-11-29T10:00:00.000Z"}]
    shown = detail({"job_id": "j", "status": "complete", "attempts": 2, "history": earlier})
    assert shown["attempts"] == 2
    assert shown["previous_attempts"] == earlier


def test_days_back_are_utc_dates_today_first() -> None:
    assert days_back(3, NOW) == ["2026-11-30", "2026-11-29", "2026-11-28"]


@pytest.mark.parametrize(("seconds", "shown"), [(None, "-"), (5, "5s"), (95, "1m35s"), (3700, "1h1m"), (90061, "1d1h")])
def test_ages_read_at_a_glance(seconds: float | None, shown: str) -> None:
    assert age(seconds) == shown
