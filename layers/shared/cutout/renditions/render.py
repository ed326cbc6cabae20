"""Rendering presets from a decoded cutout with Pillow (only this module and judge.py import it).

Quality rules a shop checks, and how they hold here:
- Transparent pixels' colour never shows: flattening is alpha compositing onto the background, and every resize
  runs on premultiplied alpha ("RGBa"), so neither a JPEG nor a resized edge shows what the cutout holds under
  alpha 0 (often the old background) as a fringe.
- A canvas is exact, its corners exactly the background, the subject's box scaled to ``fill`` of the canvas's
  limiting side and centred.
- Upright: the EXIF orientation of the ORIGINAL upload is applied (a PNG cutout usually carries none).
- Decompression bombs: the pixel count is read from the header and refused before anything is decoded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFilter, ImageOps

from cutout.renditions.errors import RenditionError
from cutout.renditions.preset import SUBJECT_ALPHA_THRESHOLD, Preset, Shadow

# The largest cutout decoded: 40 megapixels is 160 MB as RGBA; a rendering holds about three such copies at its
# peak (docs/renditions.md sizes the function's memory from it). The renditions function may lower it
# (MAX_RENDITION_PIXELS).
DEFAULT_MAX_PIXELS = 40_000_000
# Pillow's own guard stays on as a backstop for callers that open images elsewhere; ours refuses first.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
CUTOUT_FORMATS = ("PNG", "WEBP", "JPEG")
ORIENTATION_TAG = 0x0112
# EXIF orientations that swap width and height (a phone portrait stored landscape is 6 or 8).
SWAPPING = frozenset({5, 6, 7, 8})
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: str
    width: int
    height: int


def open_cutout(
    data: bytes,
    *,
    orientation: int | None = None,
    source_size: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """The cutout decoded once as RGBA, upright. ``orientation``: the EXIF orientation of the original upload (1-8;
    None or 1 = as stored, then the cutout's own tag, if any, applies). ``source_size``: the original's stored
    width and height; with it, a cutout that is already upright (the remover applied the tag) is recognised by its
    shape and not turned again. Raises RenditionError ``too_large`` above ``max_pixels``, ``unreadable`` if the
    bytes are no image."""
    try:
        image = Image.open(io.BytesIO(data), formats=CUTOUT_FORMATS)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RenditionError("unreadable", f"the cutout is not a readable image: {exc}") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise RenditionError(
            "too_large", f"the cutout is {width} x {height} ({width * height:,} pixels), over {max_pixels:,}"
        )
    try:
        image.load()
    except (OSError, ValueError) as exc:
        raise RenditionError("unreadable", f"the cutout's pixels cannot be decoded: {exc}") from exc
    if orientation in _TRANSPOSE and not _already_upright(image.size, orientation, source_size):
        for step in _TRANSPOSE[orientation]:
            image = image.transpose(step)
    elif orientation in (None, 1):
        image = ImageOps.exif_transpose(image)
    return image if image.mode == "RGBA" else image.convert("RGBA")


def source_orientation(header: bytes) -> tuple[int | None, tuple[int, int] | None]:
    """The EXIF orientation (1-8, None without a tag) and the stored width and height of an original upload, from
    its first bytes (a ranged GET of 256 KiB holds a JPEG's EXIF and frame header); (None, None) if unreadable.
    What ``open_cutout`` takes as ``orientation`` and ``source_size``."""
    try:
        with Image.open(io.BytesIO(header)) as original:
            tag = original.getexif().get(ORIENTATION_TAG)
            return (int(tag) if isinstance(tag, int) and 1 <= tag <= 8 else None), original.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None, None


def _already_upright(size: tuple[int, int], orientation: int, source_size: tuple[int, int] | None) -> bool:
    """A cutout whose shape is the original's turned by 90 degrees has had a swapping orientation applied already.
    Flips and half-turns keep the shape and cannot be told apart: they are applied (the cutout mirrors the stored
    pixels, as the emulator and Magic Hour's plain PNG output do)."""
    if source_size is None or orientation not in SWAPPING or source_size[0] == source_size[1]:
        return False
    stored_landscape = source_size[0] > source_size[1]
    return (size[0] > size[1]) != stored_landscape and size[0] != size[1]


def subject_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The box of the pixels whose alpha is above SUBJECT_ALPHA_THRESHOLD (faint halos do not count), or None."""
    alpha = image.getchannel("A")
    return alpha.point(lambda a: 255 if a > SUBJECT_ALPHA_THRESHOLD else 0).getbbox()


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resampling in premultiplied alpha: a transparent neighbour contributes no colour to an edge pixel."""
    if image.size == size:
        return image
    premultiplied = image.convert("RGBa")
    return premultiplied.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0).convert("RGBA")


def _scaled(size: tuple[int, int], factor: float) -> tuple[int, int]:
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


def _crop(image: Image.Image, preset: Preset, box: tuple[int, int, int, int] | None) -> Image.Image:
    if box is None:
        return image  # nothing above the threshold: the whole frame (the judge flags it)
    left, top, right, bottom = box
    dx, dy = (0, 0) if preset.canvas is not None else preset.margin.around(right - left, bottom - top)
    # Beyond the cutout's frame Pillow fills with transparent pixels, so a margin holds at a subject cut off too.
    return image.crop((left - dx, top - dy, right + dx, bottom + dy))


def _place(image: Image.Image, preset: Preset) -> Image.Image:
    """The subject fitted to the canvas (``fill`` of its limiting side) and centred on a transparent canvas."""
    assert preset.canvas is not None
    width, height = preset.canvas
    factor = preset.fill * min(width / image.width, height / image.height)
    subject = _resize(image, _scaled(image.size, factor))
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    canvas.paste(subject, ((width - subject.width) // 2, (height - subject.height) // 2))
    return canvas


def _cap(image: Image.Image, preset: Preset) -> Image.Image:
    if preset.max_side is None:
        return image
    longest = max(image.size)
    if longest <= preset.max_side and not (preset.upscale and longest < preset.max_side):
        return image
    return _resize(image, _scaled(image.size, preset.max_side / longest))


def _with_shadow(image: Image.Image, shadow: Shadow, grow: bool) -> Image.Image:
    """The subject over a blurred copy of its alpha, offset; ``grow`` widens the frame so the shadow is whole."""
    dx, dy = shadow.offset
    reach = 2 * shadow.blur
    pads = (max(0, reach - dx), max(0, reach - dy), max(0, reach + dx), max(0, reach + dy)) if grow else (0,) * 4
    size = (image.width + pads[0] + pads[2], image.height + pads[1] + pads[3])
    alpha = image.getchannel("A").point(lambda a: round(a * shadow.opacity))
    mask = Image.new("L", size, 0)
    mask.paste(alpha, (pads[0] + dx, pads[1] + dy))
    if shadow.blur:
        mask = mask.filter(ImageFilter.GaussianBlur(shadow.blur))
    layer = Image.new("RGBA", size, (*shadow.color, 0))
    layer.putalpha(mask)
    subject = Image.new("RGBA", size, (0, 0, 0, 0))
    subject.paste(image, (pads[0], pads[1]))
    return Image.alpha_composite(layer, subject)


def _clear_transparent(image: Image.Image) -> Image.Image:
    """RGB under alpha 0 set to 0: a transparent rendition keeps nothing of the old background in its pixels."""
    hidden = image.getchannel("A").point(lambda a: 255 if a == 0 else 0)
    if hidden.getbbox() is None:
        return image
    cleared = image.copy()
    cleared.paste((0, 0, 0, 0), mask=hidden)
    return cleared


def compose(image: Image.Image, preset: Preset) -> Image.Image:
    """The rendition's pixels before encoding: "RGBA", "RGB" (flattened) or "L" (the mask)."""
    if preset.places_subject:
        image = _crop(image, preset, subject_box(image))
    image = _place(image, preset) if preset.canvas is not None else _cap(image, preset)
    if preset.output == "alpha":
        return image.getchannel("A")
    if preset.shadow is not None:
        image = _with_shadow(image, preset.shadow, grow=preset.crop and preset.canvas is None)
    if preset.background is None:
        return _clear_transparent(image)
    flat = Image.new("RGBA", image.size, (*preset.background, 255))
    return Image.alpha_composite(flat, image).convert("RGB")


def encode(image: Image.Image, preset: Preset, icc_profile: bytes | None = None) -> bytes:
    """One encoding; no EXIF written (the pixels are upright now, a stale orientation tag would turn them again)."""
    out = io.BytesIO()
    options: dict[str, object] = {"icc_profile": icc_profile} if icc_profile else {}
    quality = preset.encode_quality
    if preset.format == "jpeg":
        # 4:4:4 chroma at high quality: product edges on white show 4:2:0's colour bleed.
        options |= {"quality": quality, "optimize": True, "subsampling": 0 if (quality or 0) >= 90 else 2}
    elif preset.format == "webp":
        options |= {"quality": quality, "method": 4}
    image.save(out, format=preset.format.upper(), **options)
    return out.getvalue()


def render(image: Image.Image, preset: Preset) -> Rendered:
    """One preset from a decoded cutout (``open_cutout``); the cutout is not modified."""
    try:
        pixels = compose(image, preset)
        body = encode(pixels, preset, image.info.get("icc_profile"))
    except (OSError, ValueError, MemoryError) as exc:
        raise RenditionError("render_failed", f"preset {preset.name}: {type(exc).__name__}: {exc}") from exc
    return Rendered(body=body, content_type=preset.content_type, width=pixels.width, height=pixels.height)
