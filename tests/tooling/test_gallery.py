"""The before/after page's builder, and that the browser check it relies on can fail."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from cutout_dev import browser
from cutout_dev.gallery import EMULATOR_NOTE, Card, preview, write_page
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
