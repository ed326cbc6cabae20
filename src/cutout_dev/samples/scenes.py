"""Three scenes a shop photographs: a mug and a glass on an oak table, a ball on a studio sweep, a bottle on linen.

Each scene is drawn as layers composited with the "over" operator, so the ground truth is exact: the subject's
alpha is what the layers put there. Edges are anti-aliased (drawn at SUPERSAMPLE times the size and reduced by area),
one part of each subject is feathered (out of focus: blurred), and one is translucent glass, through which the
background shows. A soft contact shadow darkens the background and is not the subject (Magic Hour's cutouts drop
shadows). Subjects sit off-centre. Coordinates are fractions of the frame, so any size draws the same scene.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .textures import Array, lighting, linen, smooth_noise, sweep, wood

SUPERSAMPLE = 4  # at most; fewer above ~1 MP so that a 12 MP sample stays within seconds and memory
Box = Callable[..., list[float]]
Shapes = Callable[[ImageDraw.ImageDraw, Box, float], None]  # draws on the ImageDraw, at a Box of fractions
Scene = tuple[Array, Array]  # (the picture: RGB in [0, 1]; the subject alone: premultiplied RGBA in [0, 1])


def _mask(size: tuple[int, int], shapes: Shapes, blur: float = 0.0) -> Array:
    """Coverage in [0, 1] of what ``shapes`` draws, anti-aliased; ``blur`` (a fraction of the width) feathers it."""
    w, h = size
    ss = max(1, min(SUPERSAMPLE, 4096 // max(w, h)))
    big = Image.new("L", (w * ss, h * ss), 0)

    def at(*rel: float) -> list[float]:
        return [r * (w if i % 2 == 0 else h) * ss for i, r in enumerate(rel)]

    shapes(ImageDraw.Draw(big), at, w * ss)
    small = big.resize((w, h), Image.Resampling.BOX)
    if blur:
        small = small.filter(ImageFilter.GaussianBlur(blur * w))
    return (np.asarray(small, dtype=np.float32) / 255).astype(np.float32)


def _solid(size: tuple[int, int], rgb: tuple[int, int, int]) -> Array:
    w, h = size
    return np.broadcast_to(np.asarray(rgb, dtype=np.float32) / 255, (h, w, 3)).astype(np.float32)


def _cylinder(size: tuple[int, int], rgb: tuple[int, int, int], left: float, right: float) -> Array:
    """``rgb`` shaded as a vertical cylinder between ``left`` and ``right``, lit from the upper left, highlighted."""
    w, _ = size
    t = np.clip((np.arange(w, dtype=np.float32) / w - (left + right) / 2) / ((right - left) / 2), -1, 1)
    shade = 0.45 + 0.55 * np.sqrt(1 - t * t) * (1 - 0.25 * t)
    spec = 0.35 * np.exp(-(((t + 0.45) / 0.09) ** 2))
    row = np.clip(np.asarray(rgb, dtype=np.float32)[None, :] / 255 * shade[:, None] + spec[:, None], 0, 1)
    return np.broadcast_to(row, (*_solid(size, rgb).shape[:2], 3)).astype(np.float32)


def _sphere(size: tuple[int, int], rgb: tuple[int, int, int], box: tuple[float, float, float, float]) -> Array:
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = (box[0] + box[2]) / 2 * w, (box[1] + box[3]) / 2 * h
    r = (box[2] - box[0]) / 2 * w
    d2 = np.clip(((xs - cx) ** 2 + (ys - cy) ** 2) / (r * r), 0, 1)
    lit = np.clip(((xs - cx + 0.35 * r) ** 2 + (ys - cy + 0.4 * r) ** 2) / (r * r), 0, 4)
    shade = 0.3 + 0.7 * np.sqrt(1 - d2) * (1 - 0.2 * lit)
    spec = 0.4 * np.exp(-lit / 0.03)
    lit_rgb: Array = np.clip(np.asarray(rgb, dtype=np.float32) / 255 * shade[..., None] + spec[..., None], 0, 1)
    return lit_rgb.astype(np.float32)


def _over(image: Array, subject: Array, colour: Array, coverage: Array) -> None:
    """Composite a layer over the picture, and over the subject alone (premultiplied RGBA), in place."""
    rows, cols = np.flatnonzero(coverage.any(axis=1)), np.flatnonzero(coverage.any(axis=0))
    if not len(rows):
        return
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # only where the layer is: 10x faster
    cover = coverage[box][..., None]
    paint = colour[box] * cover
    image[box] *= 1 - cover
    image[box] += paint
    subject[box] *= 1 - cover
    subject[box][..., :3] += paint
    subject[box][..., 3] += cover[..., 0]


def _shadow(image: Array, size: tuple[int, int], box: tuple[float, float, float, float], depth: float) -> None:
    cast = _mask(size, lambda d, at, _: d.ellipse(at(*box), fill=255), blur=0.035)
    image *= (1 - depth * cast)[..., None]


def table(size: tuple[int, int], rng: np.random.Generator) -> Scene:
    """A teal mug (its handle's hole shows the table) behind a glass holding an out-of-focus sprig, right of centre."""
    w, h = size
    image = wood(rng, h, w) * lighting(h, w, (0.1, 0.0))[..., None]
    _shadow(image, size, (0.42, 0.72, 0.98, 0.9), 0.45)
    subject = np.zeros((h, w, 4), dtype=np.float32)

    def mug(d: ImageDraw.ImageDraw, at: Box, s: float) -> None:
        d.rounded_rectangle(at(0.54, 0.3, 0.78, 0.82), radius=0.03 * s, fill=255)
        d.ellipse(at(0.54, 0.25, 0.78, 0.35), fill=255)

    def sprig(d: ImageDraw.ImageDraw, at: Box, _: float) -> None:
        for x, y in _SPRIG:
            d.ellipse(at(x, y, x + 0.07, y + 0.1), fill=255)

    body = _mask(size, mug)
    handle = _mask(size, lambda d, at, s: d.ellipse(at(0.72, 0.4, 0.9, 0.68), outline=255, width=round(0.032 * s)))
    _over(image, subject, _cylinder(size, (30, 120, 128), 0.72, 0.9), handle)
    _over(image, subject, _cylinder(size, (36, 132, 140), 0.54, 0.78), body)
    coffee = _mask(size, lambda d, at, _: d.ellipse(at(0.56, 0.265, 0.76, 0.335), fill=255))
    _over(image, subject, _solid(size, (58, 34, 22)), coffee * body)
    stem = _mask(size, lambda d, at, s: d.line(at(0.49, 0.42, 0.5, 0.84), fill=255, width=round(0.008 * s)), 0.002)
    _over(image, subject, _solid(size, (84, 96, 40)), stem)
    leaves = _mask(size, sprig, blur=0.012)
    mottle = smooth_noise(np.random.default_rng(0), h, w, 4)  # the subject's own: a seed changes the background
    green = _solid(size, (96, 140, 58)) * (0.75 + 0.5 * mottle)[..., None]
    _over(image, subject, green.astype(np.float32), leaves)
    glass = _mask(size, lambda d, at, s: d.rounded_rectangle(at(0.4, 0.46, 0.58, 0.86), radius=0.015 * s, fill=255))
    rim = _mask(
        size,
        lambda d, at, s: d.rounded_rectangle(
            at(0.4, 0.46, 0.58, 0.86), radius=0.015 * s, outline=255, width=round(0.007 * s)
        ),
    )
    _over(image, subject, _solid(size, (214, 232, 236)), glass * 0.32)  # the translucent part: the table shows
    _over(image, subject, _solid(size, (236, 244, 246)), rim * 0.8)
    return image, subject


_SPRIG = ((0.42, 0.24), (0.47, 0.2), (0.52, 0.27), (0.44, 0.33), (0.5, 0.36), (0.4, 0.4))


def studio(size: tuple[int, int], rng: np.random.Generator) -> Scene:
    """An orange ball beside a translucent blue tumbler and a soft pink pompom, left of centre, on a plain sweep."""
    w, h = size
    image = sweep(rng, h, w) * lighting(h, w, (0.5, 0.0), 0.2)[..., None]
    _shadow(image, size, (0.14, 0.72, 0.62, 0.86), 0.35)
    subject = np.zeros((h, w, 4), dtype=np.float32)
    ball_box = (0.14, 0.38, 0.4, 0.38 + 0.26 * w / h)
    ball = _mask(size, lambda d, at, _: d.ellipse(at(*ball_box), fill=255))
    _over(image, subject, _sphere(size, (232, 110, 28), ball_box), ball)
    pompom = _mask(size, lambda d, at, _: d.ellipse(at(0.46, 0.64, 0.58, 0.8), fill=255), blur=0.01)
    _over(image, subject, _solid(size, (226, 120, 160)), pompom)
    tumbler = _mask(size, lambda d, at, s: d.rounded_rectangle(at(0.36, 0.34, 0.5, 0.8), radius=0.01 * s, fill=255))
    edge = _mask(
        size,
        lambda d, at, s: d.rounded_rectangle(
            at(0.36, 0.34, 0.5, 0.8), radius=0.01 * s, outline=255, width=round(0.006 * s)
        ),
    )
    _over(image, subject, _solid(size, (90, 140, 220)), tumbler * 0.4)
    _over(image, subject, _solid(size, (60, 100, 190)), edge * 0.85)
    return image, subject


def portrait(size: tuple[int, int], rng: np.random.Generator) -> Scene:
    """Upright: a green bottle with a translucent neck and a fluffy dried flower, left of centre, on linen."""
    w, h = size
    image = linen(rng, h, w) * lighting(h, w, (0.3, -0.1))[..., None]
    _shadow(image, size, (0.2, 0.86, 0.8, 0.97), 0.4)
    subject = np.zeros((h, w, 4), dtype=np.float32)
    flower = _mask(size, lambda d, at, _: d.ellipse(at(0.22, 0.03, 0.5, 0.2), fill=255), blur=0.02)
    _over(image, subject, _solid(size, (236, 214, 150)), flower)
    neck = _mask(size, lambda d, at, _: d.rectangle(at(0.29, 0.16, 0.43, 0.44), fill=255))
    _over(image, subject, _cylinder(size, (150, 200, 160), 0.29, 0.43), neck * 0.45)
    cork = _mask(size, lambda d, at, _: d.rectangle(at(0.3, 0.12, 0.42, 0.19), fill=255))
    _over(image, subject, _solid(size, (170, 128, 80)), cork)
    body = _mask(size, lambda d, at, s: d.rounded_rectangle(at(0.16, 0.4, 0.56, 0.94), radius=0.08 * s, fill=255))
    _over(image, subject, _cylinder(size, (30, 96, 54), 0.16, 0.56), body)
    label = _mask(size, lambda d, at, _: d.rectangle(at(0.2, 0.58, 0.52, 0.78), fill=255))
    _over(image, subject, _cylinder(size, (238, 228, 200), 0.16, 0.56), label * body)
    return image, subject
