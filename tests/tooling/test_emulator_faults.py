"""Fault injection: every knob does what it says, is settable at run time, and replays with a seed."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import requests
from PIL import Image

from cutout_dev.emulator import EmulatorConfig, EmulatorServer
from cutout_dev.emulator import app as emulator_app
from cutout_dev.emulator.testing import StaticFileServer, WebhookReceiver, image_bytes

AUTH = {"Authorization": "Bearer emulator-key"}


@pytest.fixture
def emu(receiver: WebhookReceiver) -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        queue_seconds=0.01, render_seconds=0.02, webhook_url=receiver.url, webhook_secret="s", seed=1
    )
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture
def image_url(files: StaticFileServer) -> str:
    return files.add("/in.png", image_bytes())


def create(emu: EmulatorServer, url: str) -> requests.Response:
    return requests.post(
        f"{emu.base_url}/v1/image-background-remover", json={"assets": {"image_file_path": url}}, headers=AUTH
    )


def get(emu: EmulatorServer, project_id: str) -> requests.Response:
    return requests.get(f"{emu.base_url}/v1/image-projects/{project_id}", headers=AUTH)


def completed_project(emu: EmulatorServer, url: str) -> str:
    pid: str = create(emu, url).json()["id"]
    emu.wait_for_status(pid)
    return pid


# --- transport faults on create -----------------------------------------------------------
def test_429_before_create(emu: EmulatorServer, image_url: str) -> None:
    emu.configure(rate_429=1.0)
    resp = create(emu, image_url)
    assert resp.status_code == 429
    assert resp.headers["Content-Type"] == "application/json"
    assert "message" in resp.json()
    assert emu.state.creates == []
    assert emu.state.ledger == []


def test_5xx_before_create_uses_500_502_503(emu: EmulatorServer, image_url: str) -> None:
    emu.configure(rate_5xx=1.0)
    statuses = {create(emu, image_url).status_code for _ in range(30)}
    assert statuses == {500, 502, 503}
    assert emu.state.creates == []
    assert emu.net_credits_spent() == 0


def test_500_after_create_is_charged_and_renders(emu: EmulatorServer, image_url: str) -> None:
    emu.configure(rate_500_after_create=1.0)
    resp = create(emu, image_url)
    assert resp.status_code == 500
    (record,) = emu.state.creates
    assert record.outcome == "500_after_create"
    assert emu.net_credits_spent() == 5
    assert emu.wait_for_status(record.id).status == "complete"


def test_reset_before_create_is_a_connection_error(emu: EmulatorServer, image_url: str) -> None:
    emu.configure(rate_reset=1.0)
    with pytest.raises(requests.ConnectionError):
        create(emu, image_url)
    assert emu.state.creates == []
    emu.configure(rate_reset=0.0)
    assert create(emu, image_url).status_code == 200  # the server survives the reset


def test_reset_after_create_is_ambiguous(emu: EmulatorServer, image_url: str) -> None:
    emu.configure(rate_reset=1.0, reset_after_create=True)
    with pytest.raises(requests.ConnectionError):
        create(emu, image_url)
    (record,) = emu.state.creates
    assert record.outcome == "reset_after_create"
    assert emu.net_credits_spent() == 5
    assert emu.wait_for_status(record.id).status == "complete"


def test_faults_can_target_get(emu: EmulatorServer, image_url: str) -> None:
    pid = completed_project(emu, image_url)
    emu.configure(rate_5xx=1.0, fault_endpoints=["get"])
    assert get(emu, pid).status_code in (500, 502, 503)
    assert create(emu, image_url).status_code == 200  # create is no longer targeted


def test_latency_and_spikes(emu: EmulatorServer, image_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the pauses the emulator takes, recorded by a clock the test controls (not measured on a loaded machine)
    slept: list[float] = []
    monkeypatch.setattr(emulator_app, "time", SimpleNamespace(sleep=slept.append, time=time.time))
    emu.configure(latency_seconds=0.15)
    assert get(emu, "cmissing").status_code == 404
    emu.configure(latency_seconds=0.0, latency_spike_rate=1.0, latency_spike_seconds=0.2)
    assert get(emu, "cmissing").status_code == 404
    assert slept == [0.15, 0.2]


# --- lifecycle faults ---------------------------------------------------------------------
def test_render_error_rate(emu: EmulatorServer, image_url: str, receiver: WebhookReceiver) -> None:
    emu.configure(render_error_rate=1.0, render_error_code="invalid_parameters")
    pid = completed_project(emu, image_url)
    body = get(emu, pid).json()
    assert body["status"] == "error"
    assert body["error"]["code"] == "invalid_parameters"
    assert body["credits_charged"] == 0
    assert emu.net_credits_spent() == 0
    emu.wait_idle()
    assert [json.loads(r.body)["type"] for r in receiver.snapshot()] == ["image.started", "image.errored"]


def test_an_injected_render_failure_is_magic_hours_unexpected_error_not_a_file_fault(
    emu: EmulatorServer, image_url: str
) -> None:
    # the input is fine: the render failed, which Magic Hour reports as unknown_error ("Unexpected error"),
    # never as a code that blames the file (invalid_file_format, invalid_image_file)
    emu.configure(render_error_rate=1.0)
    body = get(emu, completed_project(emu, image_url)).json()
    assert body["status"] == "error"
    assert body["error"]["code"] == "unknown_error"
    assert "support" in body["error"]["message"]


def test_cancel_rate_sends_no_webhook(emu: EmulatorServer, image_url: str, receiver: WebhookReceiver) -> None:
    emu.configure(cancel_rate=1.0)
    pid = completed_project(emu, image_url)
    body = get(emu, pid).json()
    assert body["status"] == "canceled"
    assert body["downloads"] == []
    emu.wait_idle()
    assert receiver.snapshot() == []


def test_never_complete_stays_rendering(emu: EmulatorServer, image_url: str, receiver: WebhookReceiver) -> None:
    emu.configure(never_complete_rate=1.0)
    pid = create(emu, image_url).json()["id"]
    emu.wait_for_status(pid, "rendering")
    emu.wait_idle()  # nothing left scheduled that could still finish it
    assert get(emu, pid).json()["status"] == "rendering"
    assert [json.loads(r.body)["type"] for r in receiver.snapshot()] == ["image.started"]


def test_dropped_webhooks(emu: EmulatorServer, image_url: str, receiver: WebhookReceiver) -> None:
    emu.configure(drop_webhook_rate=1.0)
    completed_project(emu, image_url)
    emu.wait_idle()
    assert receiver.snapshot() == []
    assert [d["event_type"] for d in emu.state.dropped_webhooks] == ["image.started", "image.completed"]


def test_duplicate_webhooks(emu: EmulatorServer, image_url: str, receiver: WebhookReceiver) -> None:
    emu.configure(duplicate_webhook_rate=1.0, webhook_events=["image.completed"])
    completed_project(emu, image_url)
    emu.wait_idle()
    received = receiver.snapshot()
    assert len(received) == 2
    assert json.loads(received[0].body)["payload"]["id"] == json.loads(received[1].body)["payload"]["id"]
    assert [a.duplicate for a in emu.state.webhook_attempts] == [False, True]


def test_expired_download_rate(emu: EmulatorServer, image_url: str) -> None:
    pid = completed_project(emu, image_url)
    emu.configure(expired_download_rate=1.0)
    (download,) = get(emu, pid).json()["downloads"]
    assert download["expires_at"] < time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1))
    assert requests.get(download["url"]).status_code == 403
    emu.configure(expired_download_rate=0.0)
    assert requests.get(get(emu, pid).json()["downloads"][0]["url"]).status_code == 200


def test_garbage_download_rate(emu: EmulatorServer, image_url: str) -> None:
    pid = completed_project(emu, image_url)
    emu.configure(garbage_download_rate=1.0)
    resp = requests.get(get(emu, pid).json()["downloads"][0]["url"])
    assert resp.status_code == 200
    with pytest.raises(OSError):
        Image.open(io.BytesIO(resp.content))


# --- malformed responses ------------------------------------------------------------------
def test_malformed_bad_json(emu: EmulatorServer, image_url: str) -> None:
    emu.configure(malformed="bad_json")
    resp = create(emu, image_url)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()
    (record,) = emu.state.creates  # the project exists: a malformed 200 is an ambiguous outcome
    assert record.outcome == "malformed"
    with pytest.raises(ValueError):
        get(emu, record.id).json()


def test_malformed_missing_fields(emu: EmulatorServer, image_url: str) -> None:
    emu.configure(malformed="missing_fields")
    body = create(emu, image_url).json()
    assert "credits_charged" not in body
    assert "status" not in get(emu, body["id"]).json()


def test_malformed_unknown_status_only_on_get(emu: EmulatorServer, image_url: str) -> None:
    emu.configure(malformed="unknown_status", malformed_targets=["get"])
    body = create(emu, image_url).json()
    assert body["credits_charged"] == 5
    assert get(emu, body["id"]).json()["status"] == "processing"


def test_malformed_wrong_content_type(emu: EmulatorServer, image_url: str) -> None:
    emu.configure(malformed="wrong_content_type")
    resp = create(emu, image_url)
    assert resp.headers["Content-Type"].startswith("text/html")


def test_invalid_fault_settings_are_rejected(emu: EmulatorServer) -> None:
    with pytest.raises(ValueError):
        emu.configure(rate_429=1.5)
    with pytest.raises(ValueError):
        emu.configure(malformed="weird")
    with pytest.raises(ValueError):
        emu.configure(fault_endpoints=["download"])


# --- determinism --------------------------------------------------------------------------
def _statuses(seed: int, url: str) -> list[int]:
    with EmulatorServer(EmulatorConfig(seed=seed, rate_429=0.3, rate_5xx=0.3, render_seconds=0)) as emu:
        return [create(emu, url).status_code for _ in range(25)]


def test_seed_replays_the_same_faults(image_url: str) -> None:
    first = _statuses(7, image_url)
    assert first == _statuses(7, image_url)
    assert first != _statuses(8, image_url)
    assert {429, 200} <= set(first)
