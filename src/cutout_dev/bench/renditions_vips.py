"""The bench presets rendered with pyvips instead of Pillow, for the choice of imaging library (not a dependency:
``pip install pyvips pyvips-binary`` into the environment to measure it; the bench reports "not installed" else).

The same work as cutout.renditions.render, stated in libvips' operations: the subject's box (alpha above the
threshold), premultiplied Lanczos resizes, a canvas placed at ``fill``, flattening onto the background, the mask,
a drop shadow; encoded with the same settings. CPU time of the whole process (libvips runs threads), wall time
beside it.
"""

from __future__ import annotations

import time
from typing import Any

import pyvips  # type: ignore[import-not-found, unused-ignore]
from cutout.renditions.preset import SUBJECT_ALPHA_THRESHOLD, Preset
from cutout.renditions.presets import PresetDocument

from cutout_dev.bench.stats import ratio, summary

Vips = Any


def _box(image: Vips) -> tuple[int, int, int, int]:
    left, top, width, height = image[3].find_trim(background=[0], threshold=SUBJECT_ALPHA_THRESHOLD)
    return (left, top, left + width, top + height) if width and height else (0, 0, image.width, image.height)


def _resize(image: Vips, size: tuple[int, int]) -> Vips:
    if (image.width, image.height) == size:
        return image
    scaled = image.premultiply().resize(size[0] / image.width, vscale=size[1] / image.height, kernel="lanczos3")
    return scaled.unpremultiply().cast("uchar")


def _frame(image: Vips, preset: Preset) -> Vips:
    if not preset.places_subject:
        return image
    left, top, right, bottom = _box(image)
    dx, dy = (0, 0) if preset.canvas is not None else preset.margin.around(right - left, bottom - top)
    grown = image.embed(dx, dy, image.width + 2 * dx, image.height + 2 * dy, extend="background", background=[0] * 4)
    return grown.crop(left, top, right - left + 2 * dx, bottom - top + 2 * dy)


def _size(image: Vips, preset: Preset) -> tuple[int, int]:
    width, height = image.width, image.height
    if preset.canvas is not None:
        factor = preset.fill * min(preset.canvas[0] / width, preset.canvas[1] / height)
    elif preset.max_side is not None and (max(width, height) > preset.max_side or preset.upscale):
        factor = preset.max_side / max(width, height)
    else:
        return width, height
    return max(1, round(width * factor)), max(1, round(height * factor))


def _shadow(image: Vips, preset: Preset) -> Vips:
    shadow = preset.shadow
    assert shadow is not None
    dx, dy = shadow.offset
    reach = 2 * shadow.blur
    pads = (max(0, reach - dx), max(0, reach - dy), max(0, reach + dx), max(0, reach + dy))
    width, height = image.width + pads[0] + pads[2], image.height + pads[1] + pads[3]
    alpha = (image[3] * shadow.opacity).embed(pads[0] + dx, pads[1] + dy, width, height, extend="black")
    if shadow.blur:
        alpha = alpha.gaussblur(shadow.blur / 2)
    colour = (alpha.new_from_image(list(shadow.color))).bandjoin(alpha.cast("uchar")).copy(interpretation="srgb")
    subject = image.embed(pads[0], pads[1], width, height, extend="background", background=[0] * 4)
    return colour.composite2(subject, "over").cast("uchar")


def render(image: Vips, preset: Preset) -> bytes:
    layer = _frame(image, preset)
    layer = _resize(layer, _size(layer, preset))
    if preset.canvas is not None:
        width, height = preset.canvas
        x, y = (width - layer.width) // 2, (height - layer.height) // 2
        layer = layer.embed(x, y, width, height, extend="background", background=[0] * 4)
    if preset.output == "alpha":
        return bytes(layer[3].pngsave_buffer())
    if preset.shadow is not None:
        layer = _shadow(layer, preset)
    if preset.background is not None:
        layer = layer.flatten(background=list(preset.background))
    quality = preset.encode_quality
    if preset.format == "jpeg":
        return bytes(layer.jpegsave_buffer(Q=quality, optimize_coding=True, subsample_mode="off"))
    if preset.format == "webp":
        return bytes(layer.webpsave_buffer(Q=quality))
    return bytes(layer.pngsave_buffer(compression=6))


def compare(data: bytes, presets: dict[str, Any], runs: int, pillow_cpu_ms: dict[str, Any]) -> dict[str, Any]:
    """Decode once + render every preset with pyvips, ``runs`` times; against Pillow's figure of the same run."""
    document = PresetDocument.parse(presets)
    cpu: list[float] = []
    wall: list[float] = []
    sizes: dict[str, int] = {}
    for _ in range(runs):
        started, started_wall = time.process_time(), time.perf_counter()
        image = pyvips.Image.new_from_buffer(data, "").copy_memory()
        for preset in document.presets.values():
            sizes[preset.name] = len(render(image, preset))
        cpu.append((time.process_time() - started) * 1000)
        wall.append((time.perf_counter() - started_wall) * 1000)
    pillow = [pillow_cpu_ms["median"]] if pillow_cpu_ms.get("median") is not None else []
    return {
        "measured": True,
        "library": f"pyvips {pyvips.__version__} (libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)})",
        "render_all_cpu_ms": summary(cpu),
        "render_all_wall_ms": summary(wall),
        "bytes": sizes,
        "over_pillow_cpu": ratio(cpu, pillow),
    }
