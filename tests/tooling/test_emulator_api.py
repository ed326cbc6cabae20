"""Magic Hour emulator over HTTP: auth, validation bodies, projects, uploads, downloads, control API."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from PIL import Image

from cutout_dev.emulator import EmulatorConfig, EmulatorServer
from cutout_dev.emulator.__main__ import build_parser
from cutout_dev.emulator.testing import StaticFileServer, image_bytes
from tests.support.waiting import wait_until

KEY = "emulator-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CUID = re.compile(r"^c[a-z0-9]{24}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(queue_seconds=0.01, render_seconds=0.05)) as server:
        yield server


def create(emu: EmulatorServer, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        f"{emu.base_url}/v1/image-background-remover", json=body, headers=AUTH if headers is None else headers
    )


def get(emu: EmulatorServer, project_id: str) -> requests.Response:
    return requests.get(f"{emu.base_url}/v1/image-projects/{project_id}", headers=AUTH)


# --- auth ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}],
)
def test_every_api_endpoint_requires_the_bearer_key(emu: EmulatorServer, headers: dict[str, str]) -> None:
    calls = [
        requests.post(f"{emu.base_url}/v1/image-background-remover", json={}, headers=headers),
        requests.get(f"{emu.base_url}/v1/image-projects/cabc", headers=headers),
        requests.delete(f"{emu.base_url}/v1/image-projects/cabc", headers=headers),
        requests.post(f"{emu.base_url}/v1/files/upload-urls", json={}, headers=headers),
    ]
    for resp in calls:
        assert resp.status_code == 401
        assert resp.json() == {"message": "Unauthorized"}
        assert resp.headers["Content-Type"] == "application/json"
    assert emu.state.creates == []


def test_configured_api_key_is_used() -> None:
    with EmulatorServer(api_key="another-key") as emu:
        assert create(emu, {}, headers=AUTH).status_code == 401
        assert create(emu, {}, headers={"Authorization": "Bearer another-key"}).status_code == 400


# --- create validation --------------------------------------------------------------------
def test_missing_body_is_400(emu: EmulatorServer) -> None:
    resp = requests.post(f"{emu.base_url}/v1/image-background-remover", headers=AUTH)
    assert resp.status_code == 400
    assert resp.json() == {"message": "Missing request body"}


@pytest.mark.parametrize("body", [{"name": "x"}, {"assets": {}}, {"assets": {"image_file_path": ""}}])
def test_missing_image_file_path_is_400_with_descriptive_message(emu: EmulatorServer, body: object) -> None:
    resp = create(emu, body)
    assert resp.status_code == 400
    assert "assets" in resp.json()["message"]
    assert resp.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:1/image", "https://example.invalid/a.gif", "https://example.invalid/dl?file=a.png"],
)
def test_url_without_supported_extension_is_422(emu: EmulatorServer, url: str) -> None:
    resp = create(emu, {"assets": {"image_file_path": url}})
    assert resp.status_code == 422
    assert "extension" in resp.json()["message"]


def test_extension_is_read_from_url_path_ignoring_query(emu: EmulatorServer) -> None:
    resp = create(emu, {"assets": {"image_file_path": "http://127.0.0.1:9/in.JPG?X-Amz-Signature=abc"}})
    assert resp.status_code == 200


def test_unknown_api_assets_path_uses_documented_message(emu: EmulatorServer) -> None:
    resp = create(emu, {"assets": {"image_file_path": "api-assets/nope/1.png"}})
    assert resp.status_code == 400
    assert resp.json()["message"].startswith(
        "file path 'api-assets/nope/1.png' does not exist. Please make sure that the value matches"
    )


def test_background_path_is_validated_too(emu: EmulatorServer) -> None:
    resp = create(
        emu,
        {"assets": {"image_file_path": "http://h.test/a.png", "background_image_file_path": "http://h.test/b"}},
    )
    assert resp.status_code == 422
    assert emu.state.creates == []


# --- create / get / delete ----------------------------------------------------------------
def test_create_returns_cuid_and_records_request(emu: EmulatorServer, files: StaticFileServer) -> None:
    url = files.add("/in.png", image_bytes())
    resp = create(emu, {"name": "cutout:abc", "assets": {"image_file_path": url}})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert set(body) == {"id", "credits_charged", "frame_cost"}
    assert CUID.match(body["id"])
    assert body["credits_charged"] == body["frame_cost"] == 5
    (record,) = emu.state.creates
    assert record.id == body["id"]
    assert record.name == "cutout:abc"
    assert record.assets == {"image_file_path": url}
    assert "Authorization" not in record.headers
    assert record.headers["Content-Type"] == "application/json"
    assert record.timestamp == pytest.approx(time.time(), abs=5)


def test_lifecycle_and_get_body(emu: EmulatorServer, files: StaticFileServer) -> None:
    emu.configure(queue_seconds=0.15, render_seconds=0.15)
    url = files.add("/in.png", image_bytes())
    pid = create(emu, {"name": "n1", "assets": {"image_file_path": url}}).json()["id"]

    first = get(emu, pid).json()
    assert first["status"] == "queued"
    assert first["downloads"] == []
    emu.wait_for_status(pid, "rendering")
    assert get(emu, pid).json()["status"] == "rendering"
    emu.wait_for_status(pid, "complete")
    body = get(emu, pid).json()
    assert set(body) == {
        "id",
        "name",
        "status",
        "image_count",
        "type",
        "created_at",
        "enabled",
        "credits_charged",
        "total_frame_cost",
        "downloads",
        "error",
    }
    assert body["id"] == pid
    assert body["name"] == "n1"
    assert body["status"] == "complete"
    assert body["image_count"] == 1
    assert body["type"] == "BACKGROUND_REMOVER"
    assert ISO_MS.match(body["created_at"])
    assert body["enabled"] is True
    assert body["credits_charged"] == body["total_frame_cost"] == 5
    assert body["error"] is None
    (download,) = body["downloads"]
    assert ISO_MS.match(download["expires_at"])
    assert urlparse(download["url"]).path.endswith("/output.png")


def test_progress_happens_without_polling(emu: EmulatorServer, files: StaticFileServer) -> None:
    pid = create(emu, {"assets": {"image_file_path": files.add("/a.png", image_bytes())}}).json()["id"]
    project = emu.wait_for_status(pid, timeout=3)
    assert project.status == "complete"
    assert emu.request_counts().get("get", 0) == 0


def test_unknown_project_is_404(emu: EmulatorServer) -> None:
    resp = get(emu, "cdoesnotexist000000000000")
    assert resp.status_code == 404
    assert resp.json() == {"message": "Not Found"}
    resp = requests.delete(f"{emu.base_url}/v1/image-projects/cnope", headers=AUTH)
    assert resp.status_code == 404
    assert resp.json() == {"message": "Not Found"}


def test_delete_disables_project_and_its_output(emu: EmulatorServer, files: StaticFileServer) -> None:
    pid = create(emu, {"assets": {"image_file_path": files.add("/a.png", image_bytes())}}).json()["id"]
    emu.wait_for_status(pid)
    url = get(emu, pid).json()["downloads"][0]["url"]
    resp = requests.delete(f"{emu.base_url}/v1/image-projects/{pid}", headers=AUTH)
    assert resp.status_code == 204
    assert resp.content == b""
    body = get(emu, pid).json()
    assert body["enabled"] is False
    assert body["downloads"] == []
    assert requests.get(url).status_code == 404


def test_unknown_route_is_json_404(emu: EmulatorServer) -> None:
    resp = requests.get(f"{emu.base_url}/v2/nothing", headers=AUTH)
    assert resp.status_code == 404
    assert resp.json() == {"message": "Not Found"}


# --- downloads ----------------------------------------------------------------------------
def test_download_is_rgba_png_of_input_size(emu: EmulatorServer, files: StaticFileServer) -> None:
    pid = create(emu, {"assets": {"image_file_path": files.add("/a.jpg", image_bytes((80, 60), fmt="JPEG"))}})
    project_id = pid.json()["id"]
    emu.wait_for_status(project_id)
    url = get(emu, project_id).json()["downloads"][0]["url"]
    resp = requests.get(url, allow_redirects=False)
    assert resp.status_code == 200
    img = Image.open(io.BytesIO(resp.content))
    assert img.format == "PNG"
    assert img.mode == "RGBA"
    assert img.size == (80, 60)


def test_each_get_issues_fresh_download_urls(emu: EmulatorServer, files: StaticFileServer) -> None:
    pid = create(emu, {"assets": {"image_file_path": files.add("/a.png", image_bytes())}}).json()["id"]
    emu.wait_for_status(pid)
    first = get(emu, pid).json()["downloads"][0]
    # Expiry has second granularity, so a longer TTL is the quick way to see a newly signed URL.
    emu.configure(download_ttl_seconds=emu.config.download_ttl_seconds + 60)
    second = get(emu, pid).json()["downloads"][0]
    assert first["url"] != second["url"]
    assert second["expires_at"] > first["expires_at"]
    assert requests.get(second["url"]).status_code == 200


def test_expired_download_is_403_and_reget_gives_working_url(emu: EmulatorServer, files: StaticFileServer) -> None:
    pid = create(emu, {"assets": {"image_file_path": files.add("/a.png", image_bytes())}}).json()["id"]
    emu.wait_for_status(pid)
    emu.configure(download_ttl_seconds=0)
    stale = get(emu, pid).json()["downloads"][0]["url"]
    # expires = the current whole second, so it lapses as soon as that second is over
    # (a list: a Response is falsy when it is not 2xx)
    (resp,) = wait_until(
        lambda: [r] if (r := requests.get(stale)).status_code == 403 else [], "the stale URL lapses", timeout=5
    )
    assert b"<Code>AccessDenied</Code>" in resp.content
    emu.configure(download_ttl_seconds=60)
    assert requests.get(get(emu, pid).json()["downloads"][0]["url"]).status_code == 200


def test_tampered_download_signature_is_403(emu: EmulatorServer, files: StaticFileServer) -> None:
    pid = create(emu, {"assets": {"image_file_path": files.add("/a.png", image_bytes())}}).json()["id"]
    emu.wait_for_status(pid)
    url = get(emu, pid).json()["downloads"][0]["url"]
    expires = parse_qs(urlparse(url).query)["expires"][0]
    forged = url.replace(f"expires={expires}", f"expires={int(expires) + 1000}")
    assert requests.get(forged).status_code == 403
    assert requests.get(url.split("&auth-token=")[0]).status_code == 403


# --- uploads ------------------------------------------------------------------------------
def upload_urls(emu: EmulatorServer, items: object) -> requests.Response:
    return requests.post(f"{emu.base_url}/v1/files/upload-urls", json={"items": items}, headers=AUTH)


def test_upload_then_create_from_api_assets(emu: EmulatorServer) -> None:
    resp = upload_urls(emu, [{"type": "image", "extension": "png"}, {"type": "image", "extension": "jpg"}])
    assert resp.status_code == 200
    items = resp.json()["items"]
    assert len(items) == 2
    assert items[0]["file_path"].endswith(".png")
    assert items[1]["file_path"].endswith(".jpg")
    for item in items:
        assert set(item) == {"upload_url", "expires_at", "file_path"}
        assert re.match(r"^api-assets/c[a-z0-9]{24}/\d+\.(png|jpg)$", item["file_path"])
    path, put_url = items[0]["file_path"], items[0]["upload_url"]

    # Not uploaded yet: the documented "does not exist" error.
    assert create(emu, {"assets": {"image_file_path": path}}).status_code == 400

    data = image_bytes((30, 20))
    put = requests.put(put_url, data=data)  # no Authorization, no Content-Type, like the SDK
    assert put.status_code == 200
    created = create(emu, {"assets": {"image_file_path": path}})
    assert created.status_code == 200
    project = emu.wait_for_status(created.json()["id"])
    assert project.status == "complete"
    assert project.input_length == len(data)


def test_upload_put_refuses_a_body_of_unknown_length_as_object_stores_do(emu: EmulatorServer) -> None:
    # given an upload URL / when the body is sent chunked (a stream whose length requests cannot tell)
    item = upload_urls(emu, [{"type": "image", "extension": "png"}]).json()["items"][0]
    chunked = requests.put(item["upload_url"], data=iter([image_bytes((30, 20))]))
    # then it is refused like S3 refuses a Transfer-Encoding, and nothing was stored
    assert chunked.status_code == 501
    assert create(emu, {"assets": {"image_file_path": item["file_path"]}}).status_code == 400


def test_upload_put_with_bad_signature_is_403(emu: EmulatorServer) -> None:
    item = upload_urls(emu, [{"type": "image", "extension": "png"}]).json()["items"][0]
    assert requests.put(item["upload_url"].replace("auth-value=", "auth-value=0"), data=b"x").status_code == 403


@pytest.mark.parametrize(
    ("items", "status", "fragment"),
    [
        ([], 400, "items"),
        ([{"type": "document", "extension": "pdf"}], 400, "type"),
        ([{"type": "image", "extension": ".png"}], 400, "extension"),
        ([{"type": "image", "extension": "PNG"}], 400, "extension"),
        (
            [{"type": "image", "extension": "gif"}],
            422,
            "'gif' is an invalid image extension. Possible extensions are 'png, jpg, jpeg, jfif, heic",
        ),
        ([{"type": "audio", "extension": "mp4"}], 422, "'mp4' is an invalid audio extension"),
    ],
)
def test_upload_urls_validation(emu: EmulatorServer, items: object, status: int, fragment: str) -> None:
    resp = upload_urls(emu, items)
    assert resp.status_code == status
    assert fragment in resp.json()["message"]


def test_upload_urls_missing_body(emu: EmulatorServer) -> None:
    resp = requests.post(f"{emu.base_url}/v1/files/upload-urls", headers=AUTH)
    assert resp.status_code == 400
    assert resp.json() == {"message": "Missing request body"}


# --- ledger -------------------------------------------------------------------------------
def test_ledger_debits_and_402_when_credits_run_out(emu: EmulatorServer, files: StaticFileServer) -> None:
    emu.configure(initial_credits=12)
    url = files.add("/a.png", image_bytes())
    assert create(emu, {"assets": {"image_file_path": url}}).status_code == 200
    assert create(emu, {"assets": {"image_file_path": url}}).status_code == 200
    resp = create(emu, {"assets": {"image_file_path": url}})
    assert resp.status_code == 402
    assert resp.json() == {"message": "Payment required"}
    assert [e.kind for e in emu.state.ledger] == ["debit", "debit"]
    assert emu.net_credits_spent() == 10
    assert emu.credit_balance() == 2
    assert len(emu.state.creates) == 2


# --- control API --------------------------------------------------------------------------
def test_control_api_state_config_and_reset(emu: EmulatorServer, files: StaticFileServer) -> None:
    pid = create(emu, {"assets": {"image_file_path": files.add("/a.png", image_bytes())}}).json()["id"]
    emu.wait_for_status(pid)
    state = requests.get(f"{emu.base_url}/_emulator/state").json()
    assert [c["id"] for c in state["creates"]] == [pid]
    assert state["ledger"]["net_credits_spent"] == 5
    assert state["requests"]["create"] == 1
    assert state["projects"][0]["status"] == "complete"
    assert state["projects"][0]["input_sha256"]

    resp = requests.post(f"{emu.base_url}/_emulator/config", json={"rate_429": 1.0, "fault_endpoints": ["get"]})
    assert resp.status_code == 200
    assert resp.json()["rate_429"] == 1.0
    assert emu.config.fault_endpoints == ("get",)
    assert get(emu, pid).status_code == 429

    bad = requests.post(f"{emu.base_url}/_emulator/config", json={"no_such_field": 1})
    assert bad.status_code == 400
    assert "no_such_field" in bad.json()["message"]
    assert requests.post(f"{emu.base_url}/_emulator/config", json={"rate_5xx": 2}).status_code == 400

    assert requests.post(f"{emu.base_url}/_emulator/reset").status_code == 200
    assert emu.config.rate_429 == 0.0  # back to the startup config
    assert emu.state.creates == []
    assert get(emu, pid).status_code == 404


def test_cli_parser_builds_config() -> None:
    args = build_parser().parse_args(
        ["--port", "8799", "--render-seconds", "4", "--webhook-url", "http://x/h", "--set", "rate_429=0.5"]
    )
    assert args.port == 8799
    assert args.render_seconds == 4.0
    assert args.webhook_url == "http://x/h"
    assert args.set == ["rate_429=0.5"]


def test_cli_runs_a_server_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cutout_dev.emulator", "--port", "0", "--api-key", "k1", "--set", "rate_429=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert base_url, line
        resp = requests.post(
            f"{base_url.group(0)}/v1/image-background-remover", json={}, headers={"Authorization": "Bearer k1"}
        )
        assert resp.status_code == 429
        assert requests.get(f"{base_url.group(0)}/_emulator/config").json()["api_key"] == "k1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
