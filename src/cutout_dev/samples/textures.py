"""Backgrounds that look like photographs: wood grain, linen, a studio sweep, and the light that falls on them.

Every texture is a float32 RGB array in [0, 1] (rows, columns, 3) drawn from a seeded ``numpy.random.Generator``, so
a seed gives the same picture run after run. Noise is smoothed by resizing a small random grid with Pillow's
bicubic filter: enough for grain and cloth without a noise library.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

Array = npt.NDArray[np.float32]


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> Array:
    """Noise in [0, 1] whose features are about ``cell`` pixels wide."""
    small = rng.random((max(2, round(height / cell) + 2), max(2, round(width / cell) + 2)), dtype=np.float32)
    big = Image.fromarray(small, mode="F").resize((width, height), Image.Resampling.BICUBIC)
    out = np.asarray(big, dtype=np.float32)
    low, high = float(out.min()), float(out.max())
    return (out - low) / max(high - low, 1e-6)


def _grid(height: int, width: int) -> tuple[Array, Array]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return ys, xs


def _mix(dark: tuple[float, float, float], light: tuple[float, float, float], t: Array) -> Array:
    a = np.asarray(dark, dtype=np.float32) / 255
    b = np.asarray(light, dtype=np.float32) / 255
    return (a + (b - a) * t[..., None]).astype(np.float32)


def wood(rng: np.random.Generator, height: int, width: int) -> Array:
    """An oak table top seen from above: planks across the frame, growth rings bent by noise, fine pores."""
    ys, xs = _grid(height, width)
    plank = max(8, height // 4)
    warp = smooth_noise(rng, height, width, width / 6) * 9.0 + smooth_noise(rng, height, width, width / 25) * 1.5
    rings = 0.5 + 0.5 * np.sin((ys % plank) / plank * 11.0 + warp + xs / width * 2.0)
    pores = smooth_noise(rng, height, width, 1.6)
    streak = smooth_noise(rng, height, width, max(2.0, width / 60))
    t = (0.55 * rings**3 + 0.25 * streak + 0.2 * pores).astype(np.float32)
    tone = _mix((112, 72, 40), (196, 148, 98), t)
    shade = np.ones((height, width), dtype=np.float32)
    for n, seam in enumerate(range(0, height, plank)):
        shade[seam : seam + plank] *= 0.9 + 0.2 * float(rng.random()) - 0.04 * (n % 2)
        shade[seam : seam + max(1, height // 240)] *= 0.55  # the gap between planks
    return (tone * shade[..., None]).astype(np.float32)


def linen(rng: np.random.Generator, height: int, width: int) -> Array:
    """Greyish-beige cloth: a fine weave, slubs in the thread, and slow folds."""
    ys, xs = _grid(height, width)
    weave = 0.5 + 0.25 * np.sin(xs * 2.1) + 0.25 * np.sin(ys * 2.3)
    slubs = smooth_noise(rng, height, width, 3.0)
    folds = smooth_noise(rng, height, width, max(height, width) / 3)
    t = (0.35 * weave + 0.35 * slubs + 0.3 * folds).astype(np.float32)
    return _mix((150, 142, 128), (214, 206, 190), t)


def sweep(rng: np.random.Generator, height: int, width: int) -> Array:
    """A studio's paper sweep: one plain colour, lighter at the top, with a trace of sensor noise."""
    ys, _ = _grid(height, width)
    grain = smooth_noise(rng, height, width, 1.2)
    t = (0.85 - 0.45 * ys / height + 0.04 * grain).astype(np.float32)
    return _mix((70, 90, 112), (200, 214, 228), t)


def lighting(height: int, width: int, light: tuple[float, float], strength: float = 0.35) -> Array:
    """A multiplier in (0, 1]: brightest near ``light`` (relative x, y), falling off towards the far corners."""
    ys, xs = _grid(height, width)
    dx = xs / width - light[0]
    dy = ys / height - light[1]
    falloff = np.sqrt(dx * dx + dy * dy) / np.sqrt(2.0)
    light_map: Array = (1.0 - strength * np.clip(falloff, 0, 1) ** 1.5).astype(np.float32)
    return light_map
