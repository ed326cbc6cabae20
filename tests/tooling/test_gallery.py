"""The before/after page's builder, and that the browser check it relies on can fail."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from cutout_dev import browser
from cutout_dev.gallery import EMULATOR_NOTE, Card, LivePage, card_for_job, preview, write_page
from cutout_dev.samples import photo_like


def _png(mode: str = "RGBA", size: tuple[int, int] = (800, 400)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 200, 30, 0) if mode == "RGBA" else (10, 200, 30)).save(out, format="PNG")
    return out.getvalue()


def test_previews_keep_transparency_and_bound_the_size() -> None:
    small = preview(_png())
    assert small is not None
    img = Image.open(io.BytesIO(small))
    assert img.mode == "RGBA"
    assert max(img.size) <= 360
    assert preview(b"just some text") is None  # a non-image gets no picture, the page says why


def test_an_upload_is_previewed_as_a_browser_shows_it_upright() -> None:
    # given a portrait stored as a landscape JPEG with EXIF Orientation 6 (what a browser turns upright)
    portrait = photo_like("portrait")
    shown = preview(portrait.data)
    assert shown is not None
    # then its preview stands upright too (a PNG has no orientation tag to do it later)
    img = Image.open(io.BytesIO(shown))
    assert img.height > img.width
    assert img.size == portrait.decoded(exif_transpose=True).size


def test_a_page_of_emulator_cutouts_says_they_are_a_stand_in(tmp_path: Path) -> None:
    card = Card("incoming/a.png", "complete", _png("RGB"), _png(), "5", "1.0 s")
    page = write_page(tmp_path, [card], note=EMULATOR_NOTE).read_text(encoding="utf-8")
    assert 'id="stand-in"' in page
    assert "quality and timing are not Magic Hour" in page
    assert 'id="stand-in"' not in write_page(tmp_path, [card]).read_text(encoding="utf-8")  # real cutouts: no note


def test_keys_and_reasons_are_escaped(tmp_path: Path) -> None:
    card = Card('incoming/<script>alert("x")</script>.png', "rejected", None, None, reason="bad <b>bytes</b>")
    page = write_page(tmp_path, [card]).read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page
    assert "bad &lt;b&gt;bytes&lt;/b&gt;" in page


def test_the_browser_check_reports_a_missing_image(tmp_path: Path) -> None:
    # given a page whose cutout file went missing
    page = write_page(tmp_path, [Card("incoming/a.png", "complete", _png("RGB"), _png(), "5", "1.0 s")])
    (after,) = (tmp_path / "images").glob("*-after.png")
    after.unlink()
    # when a headless browser renders it, then the marker names the broken image
    rendered = browser.render(page)
    assert rendered.image_count == 2
    assert rendered.images.startswith("broken: ")
    assert after.name in rendered.images


def _encoded(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


class _Bucket:
    """S3's GetObject over a dict (the page reads objects and nothing else)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise KeyError(Key)
        return {"Body": io.BytesIO(self.objects[Key])}


def _job_with_renditions() -> tuple[dict[str, Any], dict[str, bytes]]:
    jpeg = _encoded(Image.new("RGB", (600, 600), (255, 255, 255)), "JPEG")
    webp = _encoded(Image.new("RGBA", (400, 200), (10, 200, 30, 0)), "WEBP")
    mask = _encoded(Image.new("L", (800, 400), 0), "PNG")
    objects = {
        "incoming/shop/shoe.png": _png("RGB"),
        "cutouts/shop/shoe.png": _png(),
        "renditions/marketplace/shop/shoe.jpg": jpeg,
        "renditions/thumb/shop/shoe.webp": webp,
        "renditions/mask/shop/shoe.png": mask,
    }

    def made(key: str, content_type: str, size: tuple[int, int]) -> dict[str, Any]:
        return {
            "status": "ok",
            "key": key,
            "bytes": len(objects[key]),
            "content_type": content_type,
            "width": size[0],
            "height": size[1],
            "rendered_at": "2026-12-07T17:00:01.000Z",
        }

    job = {
        "job_id": "a" * 32,
        "status": "complete",
        "source_bucket": "images",
        "source_key": "incoming/shop/shoe.png",
        "output_key": "cutouts/shop/shoe.png",
        "created_at": "2026-12-07T17:00:00.000Z",
        "completed_at": "2026-12-07T17:00:01.000Z",
        "renditions_at": "2026-12-07T17:00:02.000Z",
        "renditions": {
            "marketplace": made("renditions/marketplace/shop/shoe.jpg", "image/jpeg", (600, 600)),
            "thumb": made("renditions/thumb/shop/shoe.webp", "image/webp", (400, 200)),
            "mask": made("renditions/mask/shop/shoe.png", "image/png", (800, 400)),
            "poster": {"status": "failed", "reason": "canvas_too_large: 9000x9000 is over 5000"},
        },
    }
    return job, objects


def test_each_rendition_is_shown_as_the_bucket_holds_it_beside_the_cutout(tmp_path: Path) -> None:
    # given a completed job with three renditions made and one that failed
    job, objects = _job_with_renditions()
    card = card_for_job(_Bucket(objects), job)
    # when the page is written
    page = write_page(tmp_path, [card])
    html = page.read_text(encoding="utf-8")
    images = tmp_path / "images"
    # then each rendition file is the object itself, with its own extension (no re-encoded preview)
    (jpeg,) = images.glob("*-r-marketplace.jpg")
    (webp,) = images.glob("*-r-thumb.webp")
    (mask,) = images.glob("*-r-mask.png")
    assert jpeg.read_bytes() == objects["renditions/marketplace/shop/shoe.jpg"]
    assert webp.read_bytes() == objects["renditions/thumb/shop/shoe.webp"]
    assert Image.open(mask).mode == "L"  # the mask stays the greyscale image it is
    # and transparency is drawn on the checkerboard, opaque files on white; the failure says why
    assert f'class="pane checker"><img class="rendition" src="images/{webp.name}"' in html
    assert f'class="pane plain"><img class="rendition" src="images/{jpeg.name}"' in html
    assert f'class="pane plain"><img class="rendition" src="images/{mask.name}"' in html
    assert "canvas_too_large: 9000x9000 is over 5000" in html
    assert "marketplace · JPG 600x600" in html
    # and a headless browser decodes every one of them
    rendered = browser.render(page)
    assert rendered.images == "loaded"
    assert rendered.image_count == 2 + 3


def test_a_rendition_gone_from_the_bucket_is_named_and_a_stale_file_removed(tmp_path: Path) -> None:
    job, objects = _job_with_renditions()
    write_page(tmp_path, [card_for_job(_Bucket(objects), job)])
    assert len(list((tmp_path / "images").glob("*-r-*"))) == 3
    # when the thumbnail is deleted from the bucket and the page rewritten
    del objects["renditions/thumb/shop/shoe.webp"]
    page = write_page(tmp_path, [card_for_job(_Bucket(objects), job)])
    # then its pane says so, and its old file is gone from the page's folder
    assert "could not be read" in page.read_text(encoding="utf-8")
    assert not list((tmp_path / "images").glob("*-r-thumb.webp"))
    assert browser.render(page).images == "loaded"


def test_the_live_page_is_rewritten_when_renditions_arrive_after_completion(tmp_path: Path) -> None:
    job, objects = _job_with_renditions()
    bucket = _Bucket(objects)
    done = {k: v for k, v in job.items() if k not in ("renditions", "renditions_at")}
    page = LivePage(tmp_path, bucket)
    assert page.refresh([done])
    assert not list((tmp_path / "images").glob("*-r-*"))
    # when the same complete job gains its renditions
    assert page.refresh([job])
    # then the page shows them
    assert len(list((tmp_path / "images").glob("*-r-*"))) == 3
    assert not page.refresh([job])
