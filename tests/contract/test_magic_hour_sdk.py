"""The official Python SDK (magic-hour) against the emulator: proves the emulator speaks the contract.

If the emulator drifted from the SDK's models (missing `frame_cost`, `total_frame_cost`, an
unknown status, no JSON content type), these calls would fail with pydantic or type errors.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydantic
import pytest
from magic_hour import ApiError, Client
from PIL import Image

from cutout_dev.emulator import EmulatorServer
from cutout_dev.emulator.testing import StaticFileServer, image_bytes


def test_create_get_and_wait(client: Client, emulator: EmulatorServer, file_server: StaticFileServer) -> None:
    url = file_server.add("/incoming/photo.png", image_bytes((40, 30)))
    created = client.v1.image_background_remover.create(assets={"image_file_path": url}, name="cutout:job1")
    assert created.credits_charged == 5
    assert created.frame_cost == 5

    first = client.v1.image_projects.get(id=created.id)
    assert first.id == created.id
    assert first.name == "cutout:job1"
    assert first.type_ == "BACKGROUND_REMOVER"
    assert first.status in ("queued", "rendering")

    done = client.v1.image_projects.check_result(id=created.id, wait_for_completion=True, download_outputs=False)
    assert done.status == "complete"
    assert done.error is None
    assert len(done.downloads) == 1
    assert done.downloads[0].url.startswith(emulator.base_url)
    assert done.downloaded_paths is None


def test_generate_uploads_local_file_and_downloads_output(
    client: Client, emulator: EmulatorServer, tmp_path: Path
) -> None:
    source = tmp_path / "input.png"
    data = image_bytes((72, 54))
    source.write_bytes(data)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    result = client.v1.image_background_remover.generate(
        assets={"image_file_path": str(source)}, download_outputs=True, download_directory=str(out_dir)
    )

    assert result.status == "complete"
    assert result.downloaded_paths == [str(out_dir / "output.png")]
    with Image.open(out_dir / "output.png") as img:
        assert (img.format, img.mode, img.size) == ("PNG", "RGBA", (72, 54))
    # The SDK went through upload-urls + PUT, and the emulator rendered exactly those bytes.
    counts = emulator.request_counts()
    assert counts["upload_urls"] == 1
    assert counts["upload_put"] == 1
    (record,) = emulator.state.creates
    assert record.assets["image_file_path"].startswith("api-assets/")
    assert record.headers.get("X-Sideko-Sdk-Language") == "Python"
    project = emulator.project(result.id)
    assert project is not None
    assert project.input_sha256 == hashlib.sha256(data).hexdigest()


def test_render_error_is_returned_not_raised(client: Client, file_server: StaticFileServer) -> None:
    url = file_server.add("/missing.png", b"", status=404)
    created = client.v1.image_background_remover.create(assets={"image_file_path": url})
    result = client.v1.image_projects.check_result(id=created.id, wait_for_completion=True, download_outputs=True)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.code == "invalid_image_path"
    assert result.credits_charged == 0


def test_delete(client: Client, file_server: StaticFileServer) -> None:
    url = file_server.add("/a.png", image_bytes())
    created = client.v1.image_background_remover.create(assets={"image_file_path": url})
    client.v1.image_projects.check_result(id=created.id, wait_for_completion=True, download_outputs=False)
    assert client.v1.image_projects.delete(id=created.id) is None
    after = client.v1.image_projects.get(id=created.id)
    assert after.enabled is False


def test_401_with_wrong_key(emulator: EmulatorServer) -> None:
    with pytest.raises(ApiError) as info:
        Client(token="wrong-key", base_url=emulator.base_url).v1.image_projects.get(id="cx")
    assert info.value.status_code == 401
    assert info.value.body == {"message": "Unauthorized"}


def test_402_when_out_of_credits(client: Client, emulator: EmulatorServer) -> None:
    emulator.configure(initial_credits=4)
    with pytest.raises(ApiError) as info:
        client.v1.image_background_remover.create(assets={"image_file_path": "http://127.0.0.1:9/a.png"})
    assert info.value.status_code == 402
    assert info.value.body == {"message": "Payment required"}


def test_plan_queue_mode_queued_status_fits_the_sdk_model(
    client: Client, emulator: EmulatorServer, file_server: StaticFileServer
) -> None:
    # Given a plan of 1 that queues, and a first project held mid-render
    emulator.configure(plan_concurrency=1, plan_mode="queue")
    first = client.v1.image_background_remover.create(
        assets={"image_file_path": file_server.add("/a.png", image_bytes(), held=True)}
    )
    emulator.wait_for_status(first.id, "rendering")
    # When a second is created, then the SDK reads it as `queued` until the first ends
    second = client.v1.image_background_remover.create(
        assets={"image_file_path": file_server.add("/b.png", image_bytes())}
    )
    assert client.v1.image_projects.get(id=second.id).status == "queued"
    file_server.release("/a.png")
    done = client.v1.image_projects.check_result(id=second.id, wait_for_completion=True, download_outputs=False)
    assert done.status == "complete"


def test_plan_reject_mode_is_a_429_api_error(
    client: Client, emulator: EmulatorServer, file_server: StaticFileServer
) -> None:
    # Given a plan of 1 that rejects, with its slot taken
    emulator.configure(plan_concurrency=1, plan_mode="reject")
    url = file_server.add("/a.png", image_bytes(), held=True)
    client.v1.image_background_remover.create(assets={"image_file_path": url})
    # When another create is made, then the SDK raises ApiError 429 with the error envelope, uncharged
    with pytest.raises(ApiError) as info:
        client.v1.image_background_remover.create(assets={"image_file_path": url})
    assert info.value.status_code == 429
    assert info.value.body == {"message": "Too Many Requests"}
    assert emulator.net_credits_spent() == 5
    file_server.release("/a.png")


def test_404_for_unknown_project(client: Client) -> None:
    with pytest.raises(ApiError) as info:
        client.v1.image_projects.get(id="cunknown00000000000000000")
    assert info.value.status_code == 404
    assert info.value.body == {"message": "Not Found"}
    with pytest.raises(ApiError) as info:
        client.v1.image_projects.delete(id="cunknown00000000000000000")
    assert info.value.status_code == 404


def test_422_for_url_without_extension(client: Client) -> None:
    with pytest.raises(ApiError) as info:
        client.v1.image_background_remover.create(assets={"image_file_path": "http://127.0.0.1:9/photo"})
    assert info.value.status_code == 422
    assert "extension" in info.value.body["message"]


def test_422_for_bad_upload_extension(client: Client) -> None:
    with pytest.raises(ApiError) as info:
        client.v1.files.upload_urls.create(items=[{"type_": "image", "extension": "gif"}])
    assert info.value.status_code == 422
    assert info.value.body["message"].startswith("'gif' is an invalid image extension")


def test_hostile_missing_fields_breaks_sdk_models(
    client: Client, emulator: EmulatorServer, file_server: StaticFileServer
) -> None:
    emulator.configure(malformed="missing_fields")
    with pytest.raises(pydantic.ValidationError):
        client.v1.image_background_remover.create(assets={"image_file_path": file_server.add("/a.png", b"x")})
