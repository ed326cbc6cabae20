"""Renditions checked as a shop checks them: exact canvas, exact background corners, the subject at `fill` and
centred, no fringe of what the cutout hides under alpha 0, upright, bombs refused."""

from __future__ import annotations

import io
from typing import Any

import pytest
from cutout.renditions.errors import RenditionError
from cutout.renditions.presets import PresetDocument
from cutout.renditions.render import compose, open_cutout, render, render_all, source_orientation
from PIL import Image

from tests.support.cutouts import box_of, cutout, white_subject


def _preset(**settings: Any) -> Any:
    return PresetDocument.parse({"presets": {"p": settings}}).presets["p"]


def _decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def _pixels(image: Image.Image) -> list[tuple[int, ...]]:
    bands = len(image.getbands())
    data = image.tobytes()
    return [tuple(data[i : i + bands]) for i in range(0, len(data), bands)]


def _open(image: Image.Image, **kwargs: Any) -> Image.Image:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return open_cutout(out.getvalue(), **kwargs)


def test_marketplace_jpeg_is_the_exact_canvas_with_white_corners_and_the_subject_at_fill_centred() -> None:
    # given: an off-centre 600x300 subject with a soft edge and a faint halo, green under alpha 0
    source = cutout(size=(1200, 900), box=(150, 300, 750, 600))
    preset = _preset(format="jpeg", background="#FFFFFF", canvas=[2000, 2000], fill=0.85, quality=90)

    # when
    rendered = render(_open(source.image), preset)

    # then: the canvas is exact and every corner exactly white
    jpeg = _decoded(rendered.body)
    assert (jpeg.format, jpeg.size, rendered.content_type) == ("JPEG", (2000, 2000), "image/jpeg")
    assert (rendered.width, rendered.height) == (2000, 2000)
    for corner in [(0, 0), (1999, 0), (0, 1999), (1999, 1999)]:
        assert jpeg.getpixel(corner) == (255, 255, 255), corner
    # the subject (width is the limiting side): 0.85 x 2000 = 1700 wide, 850 high, centred
    # (the subject's pixels: visibly off white, as alpha above the threshold blends; JPEG noise is a few levels)
    darkest = Image.eval(jpeg, lambda v: 255 if v < 250 else 0).convert("L")
    shown = darkest.point(lambda v: 255 if v else 0).getbbox()
    _assert_box(shown, (150, 575, 1850, 1425), tolerance=1)


def test_a_transparent_canvas_places_the_subjects_alpha_box_at_fill_and_centred() -> None:
    source = cutout(size=(900, 1200), box=(500, 100, 700, 900))  # tall, hugging the right: height limits
    preset = _preset(format="png", canvas=[1000, 800], fill=0.9)

    rendered = render(_open(source.image), preset)

    png = _decoded(rendered.body)
    assert (png.mode, png.size) == ("RGBA", (1000, 800))
    # 0.9 x 800 = 720 high, 200 x 720/800 = 180 wide, centred in 1000 x 800
    _assert_box(box_of(png), (410, 40, 590, 760), tolerance=1)
    assert png.getpixel((0, 0)) == (0, 0, 0, 0)


def _assert_box(found: Any, expected: tuple[int, int, int, int], tolerance: int) -> None:
    assert found is not None
    assert all(abs(a - b) <= tolerance for a, b in zip(found, expected, strict=True)), (found, expected)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_flattening_never_shows_the_colour_hidden_under_transparency(fmt: str) -> None:
    # given: a red subject whose transparent surround holds bright green (a straight "convert RGB" shows it)
    source = cutout(size=(600, 400), box=(100, 100, 400, 300), soft=6)
    preset = _preset(format=fmt, background="#FFFFFF", canvas=[500, 500], fill=0.8)

    pixels = _decoded(render(_open(source.image), preset).body).convert("RGB")

    # then: no pixel leans green (the subject is red-purple: green never exceeds blue by more than codec noise)
    r, g, b = (band.tobytes() for band in pixels.split())
    assert max(gi - bi for gi, bi in zip(g, b, strict=True)) <= (6 if fmt != "png" else 0)
    del r


def test_resizing_keeps_edges_their_own_colour_not_darkened_by_hidden_pixels() -> None:
    # given: a white disc with a blurred edge over black garbage, shrunk 4x with transparency kept
    source = white_subject((800, 600))
    preset = _preset(format="png", max_side=200)

    small = _decoded(render(_open(source.image), preset).body)

    # then: every visibly opaque edge pixel is still white (a straight-alpha resize would make it grey)
    assert small.size == (200, 150)
    edge = [px for px in _pixels(small) if 24 <= px[3] < 255]
    assert edge, "the edge has semi-transparent pixels"
    assert min(min(px[:3]) for px in edge) >= 235


def test_a_transparent_rendition_keeps_nothing_of_the_hidden_background() -> None:
    source = cutout(size=(300, 200), box=(50, 50, 150, 150))
    png = _decoded(render(_open(source.image), _preset(format="png")).body)
    assert {px[:3] for px in _pixels(png) if px[3] == 0} == {(0, 0, 0)}


def test_crop_keeps_the_subject_and_a_margin_in_pixels_or_percent_and_ignores_faint_halos() -> None:
    source = cutout(size=(1200, 900), box=(150, 300, 750, 600))  # a halo at alpha 4 six pixels around
    image = _open(source.image)

    tight = render(image, _preset(crop=True))
    pixels = render(image, _preset(crop=True, margin=40))
    percent = render(image, _preset(crop=True, margin="10%"))

    assert (tight.width, tight.height) == (600, 300)
    assert box_of(_decoded(tight.body)) == (0, 0, 600, 300)
    assert (pixels.width, pixels.height) == (680, 380)
    assert box_of(_decoded(pixels.body)) == (40, 40, 640, 340)
    assert (percent.width, percent.height) == (720, 360)  # 10% of 600 left and right, of 300 top and bottom


def test_a_margin_beyond_the_frame_is_transparent_space_not_a_clamp() -> None:
    source = cutout(size=(400, 300), box=(0, 100, 200, 300), halo=False)  # touches the left and bottom edges
    rendered = render(_open(source.image), _preset(crop=True, margin=20))
    assert (rendered.width, rendered.height) == (240, 240)
    assert box_of(_decoded(rendered.body)) == (20, 20, 220, 220)


def test_max_side_caps_never_enlarges_unless_asked() -> None:
    image = _open(cutout(size=(1200, 900)).image)
    assert (render(image, _preset(max_side=400)).width, render(image, _preset(max_side=400)).height) == (400, 300)
    assert render(image, _preset(max_side=2400)).width == 1200
    enlarged = render(image, _preset(max_side=2400, upscale=True))
    assert (enlarged.width, enlarged.height) == (2400, 1800)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_output_alpha_is_the_mask_as_a_greyscale_image(fmt: str) -> None:
    source = cutout(size=(300, 200), box=(50, 50, 150, 150))
    rendered = render(_open(source.image), _preset(format=fmt, output="alpha"))
    mask = _decoded(rendered.body)
    assert (mask.size, rendered.content_type) == ((300, 200), f"image/{fmt}")
    grey = mask.convert("L")
    if fmt == "png":
        assert mask.mode == "L"
        assert grey.tobytes() == source.image.getchannel("A").tobytes()
    else:
        assert grey.getpixel((100, 100)) >= 250 and grey.getpixel((5, 5)) <= 5


def test_a_drop_shadow_falls_below_the_subject_inside_the_frame() -> None:
    source = cutout(size=(600, 400), box=(100, 100, 300, 300), halo=False)
    preset = _preset(
        format="png", background="#FFFFFF", crop=True, shadow={"offset": [0, 20], "blur": 8, "opacity": 0.5}
    )

    flat = _decoded(render(_open(source.image), preset).body).convert("RGB")

    # (the frame grew to hold the whole shadow: 2 x blur each side; below, the 20 px offset too; above, the offset
    # takes it away from the top edge)
    assert flat.size == (200 + 16 + 16, 200 + 0 + 36)
    below = flat.getpixel((116, 200 + 10))  # just under the subject, in the shadow
    assert below[0] == below[1] == below[2] and 100 < below[0] < 240
    assert flat.getpixel((0, 0)) == (255, 255, 255)


def _marked(size: tuple[int, int]) -> Image.Image:
    """A cutout with an opaque red block in its top-left corner (where "up" is on the stored pixels)."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 40, 20))
    image.paste((0, 0, 255, 255), (60, 60, size[0] - 60, size[1] - 60))
    return image


def test_the_originals_exif_orientation_makes_the_rendition_upright() -> None:
    # given: the original was stored landscape 400x300 with orientation 6 (rotate 90 clockwise to view)
    turned = _open(_marked((400, 300)), orientation=6, source_size=(400, 300))

    # then: portrait, and the stored top-left is now top-right
    assert turned.size == (300, 400)
    assert turned.getpixel((299 - 5, 5))[:3] == (255, 0, 0)
    rendered = render(turned, _preset(format="jpeg", background="#FFFFFF"))
    assert (rendered.width, rendered.height) == (300, 400)
    assert "exif" not in _decoded(rendered.body).info  # no stale tag that would turn it again


def test_a_cutout_the_remover_already_turned_upright_is_not_turned_twice() -> None:
    upright = _marked((300, 400))
    kept = _open(upright, orientation=6, source_size=(400, 300))
    assert kept.size == (300, 400)
    assert kept.tobytes() == upright.tobytes()


def test_a_cutout_carrying_its_own_orientation_tag_is_applied_when_the_original_gives_none() -> None:
    stored = _marked((400, 300))
    exif = Image.Exif()
    exif[0x0112] = 8
    out = io.BytesIO()
    stored.save(out, format="PNG", exif=exif)
    assert open_cutout(out.getvalue()).size == (300, 400)


def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    # given: a PNG of 6000 x 6000 (36 megapixels) that compresses to a few kilobytes
    out = io.BytesIO()
    Image.new("L", (6000, 6000), 0).save(out, format="PNG")
    assert len(out.getvalue()) < 100_000

    with pytest.raises(RenditionError) as raised:
        open_cutout(out.getvalue(), max_pixels=20_000_000)
    assert raised.value.code == "too_large"
    assert "36,000,000" in raised.value.message


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_bytes_that_are_no_image_are_refused_as_unreadable(data: bytes) -> None:
    with pytest.raises(RenditionError) as raised:
        open_cutout(data)
    assert raised.value.code == "unreadable"


def test_a_truncated_cutout_is_refused_as_unreadable() -> None:
    body = cutout(size=(400, 300)).png()
    with pytest.raises(RenditionError) as raised:
        open_cutout(body[: len(body) // 2])
    assert raised.value.code == "unreadable"


def test_rendering_leaves_the_decoded_cutout_untouched_for_the_next_preset() -> None:
    image = _open(cutout(size=(600, 400)).image)
    before = image.tobytes()
    for settings in [
        {"format": "jpeg", "background": "#FFFFFF", "canvas": [300, 300], "fill": 0.8},
        {"crop": True, "margin": 10, "shadow": True},
        {"output": "alpha", "max_side": 100},
    ]:
        compose(image, _preset(**settings))
    assert image.tobytes() == before


def test_cutouts_rendered_in_turn_each_get_their_own_subject() -> None:
    # (presets rendered one by one from one decoded cutout share its work: never another cutout's)
    first = _open(cutout(size=(600, 400), box=(100, 100, 300, 200)).image)
    second = _open(cutout(size=(600, 400), box=(50, 50, 450, 350)).image)
    tight = _preset(crop=True)
    sizes = [(r.width, r.height) for r in (render(first, tight), render(second, tight), render(first, tight))]
    assert sizes == [(200, 100), (400, 300), (200, 100)]


def test_render_all_renders_each_preset_from_one_decoded_cutout() -> None:
    image = _open(cutout(size=(600, 400), box=(0, 50, 600, 350)).image)
    presets = PresetDocument.parse(
        {"presets": {"a": {"format": "webp", "max_side": 100}, "b": {"output": "alpha", "crop": True}}}
    ).presets
    results = render_all(image, list(presets.values()))
    assert {name: (r.width, r.height) for name, r in results.items() if not isinstance(r, RenditionError)} == {
        "a": (100, 67),
        "b": (600, 300),
    }


def test_rendering_keeps_nothing_of_a_cutout_once_the_caller_drops_it() -> None:
    # (a Lambda renders one job after another: the last job's pixels must not stay in memory)
    import gc
    import weakref

    image = _open(cutout(size=(600, 400)).image)
    render(image, _preset(format="webp", max_side=100))
    render(image, _preset(crop=True))
    gone = weakref.ref(image)
    del image
    gc.collect()
    assert gone() is None


def test_the_originals_orientation_and_size_are_read_from_its_first_bytes() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.effect_noise((1600, 1200), 60).convert("RGB").save(out, format="JPEG", exif=exif, quality=95)
    assert len(out.getvalue()) > 256 * 1024  # the header alone is read, as a ranged GET gives it
    assert source_orientation(out.getvalue()[: 256 * 1024]) == (6, (1600, 1200))
    plain = io.BytesIO()
    Image.new("RGB", (30, 20)).save(plain, format="PNG")
    assert source_orientation(plain.getvalue()) == (None, (30, 20))
    assert source_orientation(b"not an image") == (None, None)


def test_a_palette_cutout_with_transparency_renders_like_an_rgba_one() -> None:
    rgba = cutout(size=(300, 200), box=(50, 50, 150, 150), soft=0, halo=False).image
    palette = rgba.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = palette.getpixel((0, 0))
    out = io.BytesIO()
    palette.save(out, format="PNG", transparency=palette.getpixel((0, 0)))
    rendered = render(open_cutout(out.getvalue()), _preset(crop=True))
    assert (rendered.width, rendered.height) == (100, 100)


def test_a_cutout_far_over_the_limit_is_too_large_not_unreadable() -> None:
    # 200 megapixels: over twice Pillow's own guard, which refuses it at the header, as too large
    out = io.BytesIO()
    Image.new("1", (20_000, 10_000), 0).save(out, format="PNG")
    with pytest.raises(RenditionError) as raised:
        open_cutout(out.getvalue())
    assert raised.value.code == "too_large"
