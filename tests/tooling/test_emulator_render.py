"""The emulator renders for real: it fetches inputs, decodes them and produces an RGBA PNG."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import pytest
import requests
from PIL import Image

from cutout_dev.emulator import EmulatorConfig, EmulatorServer, RenderError, remove_background
from cutout_dev.emulator.testing import StaticFileServer, image_bytes

AUTH = {"Authorization": "Bearer emulator-key"}


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(queue_seconds=0.01, render_seconds=0.02)) as server:
        yield server


def run(emu: EmulatorServer, assets: dict[str, str]) -> dict[str, object]:
    resp = requests.post(f"{emu.base_url}/v1/image-background-remover", json={"assets": assets}, headers=AUTH)
    assert resp.status_code == 200, resp.text
    pid = resp.json()["id"]
    emu.wait_for_status(pid, timeout=5)
    body: dict[str, object] = requests.get(f"{emu.base_url}/v1/image-projects/{pid}", headers=AUTH).json()
    return body


def download(body: dict[str, object]) -> Image.Image:
    downloads = body["downloads"]
    assert isinstance(downloads, list)
    resp = requests.get(downloads[0]["url"])
    assert resp.status_code == 200
    img = Image.open(io.BytesIO(resp.content))
    assert img.format == "PNG"
    return img


def test_fetches_input_and_records_its_hash(emu: EmulatorServer, files: StaticFileServer) -> None:
    data = image_bytes((50, 40))
    body = run(emu, {"image_file_path": files.add("/incoming/cat.png", data) + "?X-Amz-Signature=x"})
    assert body["status"] == "complete"
    assert files.hits == ["/incoming/cat.png"]
    project = emu.project(str(body["id"]))
    assert project is not None
    assert project.input_sha256 == hashlib.sha256(data).hexdigest()
    assert project.input_length == len(data)


def test_output_is_transparent_around_the_subject(emu: EmulatorServer, files: StaticFileServer) -> None:
    body = run(emu, {"image_file_path": files.add("/a.png", image_bytes((64, 48)))})
    img = download(body)
    assert img.mode == "RGBA"
    assert img.size == (64, 48)
    assert img.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert img.getpixel((63, 47))[3] == 0  # type: ignore[index]
    assert img.getpixel((32, 24)) == (200, 30, 30, 255)


def test_background_is_resized_and_composited(emu: EmulatorServer, files: StaticFileServer) -> None:
    bg = io.BytesIO()
    Image.new("RGB", (10, 10), (0, 0, 255)).save(bg, "PNG")
    body = run(
        emu,
        {
            "image_file_path": files.add("/a.webp", image_bytes((64, 48), fmt="WEBP")),
            "background_image_file_path": files.add("/bg.png", bg.getvalue()),
        },
    )
    img = download(body).convert("RGBA")
    assert img.size == (64, 48)
    assert img.getpixel((0, 0)) == (0, 0, 255, 255)
    r, g, b, a = img.getpixel((32, 24))  # type: ignore[misc]
    assert (r > 150, g < 80, b < 80, a) == (True, True, True, 255)  # the subject survives (lossy WEBP)
    project = emu.project(str(body["id"]))
    assert project is not None
    assert project.background_length == len(bg.getvalue())


@pytest.mark.parametrize("status", [404, 403, 500])
def test_unfetchable_input_errors_with_invalid_image_path(
    emu: EmulatorServer, files: StaticFileServer, status: int
) -> None:
    url = files.add("/gone.png", b"nope", status=status)
    body = run(emu, {"image_file_path": url})
    assert body["status"] == "error"
    assert body["downloads"] == []
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "invalid_image_path"
    assert error["message"]


def test_connection_error_is_invalid_image_path(emu: EmulatorServer, files: StaticFileServer) -> None:
    port = files.base_url.rsplit(":", 1)[1]
    files.stop()  # nothing listens there any more
    body = run(emu, {"image_file_path": f"http://127.0.0.1:{port}/x.png"})
    assert body["error"] == {"code": "invalid_image_path", "message": body["error"]["message"]}  # type: ignore[index]


def test_redirects_are_not_followed(emu: EmulatorServer, files: StaticFileServer) -> None:
    files.add("/real.png", image_bytes())
    url = files.add("/moved.png", b"", status=302)
    body = run(emu, {"image_file_path": url})
    assert body["status"] == "error"
    assert files.hits == ["/moved.png"]


def test_undecodable_input_is_invalid_file_format(emu: EmulatorServer, files: StaticFileServer) -> None:
    body = run(emu, {"image_file_path": files.add("/a.png", b"this is not an image")})
    assert body["status"] == "error"
    assert body["error"]["code"] == "invalid_file_format"  # type: ignore[index]


def test_render_error_refunds_credits(emu: EmulatorServer, files: StaticFileServer) -> None:
    body = run(emu, {"image_file_path": files.add("/broken.png", b"", status=404)})
    assert body["credits_charged"] == 0
    assert body["total_frame_cost"] == 0
    assert [(e.kind, e.amount) for e in emu.state.ledger] == [("debit", 5), ("refund", 5)]
    assert emu.net_credits_spent() == 0


def test_too_large_input_is_rejected(emu: EmulatorServer, files: StaticFileServer) -> None:
    emu.configure(max_input_bytes=100)
    body = run(emu, {"image_file_path": files.add("/big.png", image_bytes((200, 200)))})
    assert body["error"]["code"] == "file_too_large"  # type: ignore[index]


def test_remove_background_directly() -> None:
    out = Image.open(io.BytesIO(remove_background(image_bytes((20, 10)))))
    assert (out.format, out.mode, out.size) == ("PNG", "RGBA", (20, 10))
    with pytest.raises(RenderError) as info:
        remove_background(b"\x89PNG garbage")
    assert info.value.code == "invalid_file_format"


@pytest.mark.parametrize(("apply", "size"), [(False, (60, 40)), (True, (40, 60))])
def test_the_inputs_exif_orientation_is_applied_only_when_configured(apply: bool, size: tuple[int, int]) -> None:
    # given a photo stored landscape (60 x 40) whose EXIF orientation 6 says it is a portrait
    stored = Image.new("RGB", (60, 40), (255, 255, 255))
    stored.paste((200, 30, 30), (20, 10, 40, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, format="JPEG", exif=exif.tobytes())
    # when the emulator removes its background / then the cutout is the stored frame, or the upright picture
    assert Image.open(io.BytesIO(remove_background(out.getvalue(), apply_orientation=apply))).size == size
