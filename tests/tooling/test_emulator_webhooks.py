"""Signed webhook deliveries: signature over the raw body, event selection, retries, faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cutout_dev.emulator import SIGNATURE_HEADER, TIMESTAMP_HEADER, EmulatorConfig, EmulatorServer, sign
from cutout_dev.emulator.testing import StaticFileServer, WebhookReceiver, image_bytes

AUTH = {"Authorization": "Bearer emulator-key"}
SECRET = "test-webhook-secret"


@pytest.fixture
def emu(receiver: WebhookReceiver) -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        queue_seconds=0.01,
        render_seconds=0.02,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_base_delay_seconds=0.01,
    )
    with EmulatorServer(config) as server:
        yield server


def submit(emu: EmulatorServer, url: str) -> str:
    resp = requests.post(
        f"{emu.base_url}/v1/image-background-remover", json={"assets": {"image_file_path": url}}, headers=AUTH
    )
    assert resp.status_code == 200
    project_id: str = resp.json()["id"]
    return project_id


def test_completed_job_sends_signed_started_and_completed(
    emu: EmulatorServer, receiver: WebhookReceiver, files: StaticFileServer
) -> None:
    sent_after = int(time.time())
    pid = submit(emu, files.add("/a.png", image_bytes()))
    emu.wait_for_status(pid)
    emu.wait_idle()
    received = receiver.snapshot()
    assert [json.loads(r.body)["type"] for r in received] == ["image.started", "image.completed"]
    for r in received:
        ts = r.headers[TIMESTAMP_HEADER]
        assert sent_after <= int(ts) <= time.time()  # signed when sent: between the create and now
        expected = hmac.new(SECRET.encode(), ts.encode() + b"." + r.body, hashlib.sha256).hexdigest()
        assert r.headers[SIGNATURE_HEADER] == expected
        assert r.body == json.dumps(json.loads(r.body), separators=(",", ":")).encode()  # compact JSON
        assert r.headers["content-type"] == "application/json"
    completed = json.loads(received[1].body)["payload"]
    assert completed["id"] == pid
    assert completed["status"] == "complete"
    assert completed["total_frame_cost"] == 5
    # The payload's download URL is live, like a GET's.
    assert requests.get(completed["downloads"][0]["url"]).status_code == 200
    started = json.loads(received[0].body)["payload"]
    assert (started["status"], started["downloads"]) == ("rendering", [])


def test_errored_job_sends_image_errored(
    emu: EmulatorServer, receiver: WebhookReceiver, files: StaticFileServer
) -> None:
    emu.configure(webhook_events=["image.errored", "image.completed"])
    pid = submit(emu, files.add("/x.png", b"", status=404))
    emu.wait_for_status(pid)
    emu.wait_idle()
    (only,) = receiver.snapshot()
    event = json.loads(only.body)
    assert event["type"] == "image.errored"
    assert event["payload"]["error"]["code"] == "invalid_image_path"
    assert event["payload"]["credits_charged"] == 0


def test_non_2xx_is_retried_with_backoff_and_recorded(
    emu: EmulatorServer, receiver: WebhookReceiver, files: StaticFileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.configure(webhook_events=["image.completed"], webhook_base_delay_seconds=0.05)
    receiver.respond_with([500, 503])
    # the delays the dispatcher schedules, read where it schedules them (not from a clock a loaded machine skews)
    scheduled: list[float] = []
    dispatcher = emu.engine.webhooks
    push = dispatcher._push

    def recording_push(delay: float, delivery: Any) -> None:
        scheduled.append(delay)
        push(delay, delivery)

    monkeypatch.setattr(dispatcher, "_push", recording_push)
    pid = submit(emu, files.add("/a.png", image_bytes()))
    emu.wait_for_status(pid)
    emu.wait_idle()
    attempts = emu.state.webhook_attempts
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert scheduled[-2:] == [0.05, 0.1]  # each retry after the base delay, doubled
    assert [a.timestamp for a in attempts] == sorted(a.timestamp for a in attempts)
    bodies = {r.body for r in receiver.snapshot()}
    assert len(bodies) == 1  # same event body on every attempt, each re-signed


def test_retries_are_bounded(emu: EmulatorServer, receiver: WebhookReceiver, files: StaticFileServer) -> None:
    emu.configure(webhook_events=["image.completed"], webhook_max_attempts=3)
    receiver.respond_with([500] * 10)
    pid = submit(emu, files.add("/a.png", image_bytes()))
    emu.wait_for_status(pid)
    emu.wait_idle()
    assert [a.status_code for a in emu.state.webhook_attempts] == [500, 500, 500]


def test_connection_error_is_retried(files: StaticFileServer) -> None:
    config = EmulatorConfig(
        queue_seconds=0.01,
        render_seconds=0.01,
        webhook_url="http://127.0.0.1:9/nothing-listens",
        webhook_secret=SECRET,
        webhook_max_attempts=2,
        webhook_base_delay_seconds=0.01,
        webhook_events=("image.completed",),
    )
    with EmulatorServer(config) as emu:
        pid = submit(emu, files.add("/a.png", image_bytes()))
        emu.wait_for_status(pid)
        emu.wait_idle()
        attempts = emu.state.webhook_attempts
        assert [a.attempt for a in attempts] == [1, 2]
        assert all(a.status_code is None and a.error for a in attempts)


def test_no_webhook_without_url(files: StaticFileServer) -> None:
    with EmulatorServer(queue_seconds=0.01, render_seconds=0.01) as emu:
        emu.wait_for_status(submit(emu, files.add("/a.png", image_bytes())))
        emu.wait_idle()
        assert emu.state.webhook_attempts == []


def test_sign_helper_matches_documented_scheme() -> None:
    body = '{"type":"image.completed","payload":{}}'
    expected = hmac.new(b"s", b"1700000000." + body.encode(), hashlib.sha256).hexdigest()
    assert sign("s", "1700000000", body) == expected
    assert len(expected) == 64
