"""How well a cutout matches a sample's truth, and ``python -m cutout_dev.samples.measure``: the emulator's figures.

A pixel counts as opaque at alpha >= OPAQUE (half way). ``background_left`` is the share of the true background
(truth alpha 0) a cutout leaves opaque; ``subject_lost`` the share of the fully opaque subject (truth 255) it makes
transparent. Soft edges and the translucent part (truth strictly between) count in neither.

The command prints both figures and the time per cutout for each photo-like sample (as stored: no EXIF applied), for
the emulator's key and for the corner-colour key it replaced, plus one 2-megapixel render.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from . import PHOTO_LIKE, Sample, photo_like

OPAQUE = 128


def background_left(alpha: Image.Image, truth: Image.Image) -> float:
    a, t = np.asarray(alpha.convert("L")), np.asarray(truth.convert("L"))
    return float((a[t == 0] >= OPAQUE).mean())


def subject_lost(alpha: Image.Image, truth: Image.Image) -> float:
    a, t = np.asarray(alpha.convert("L")), np.asarray(truth.convert("L"))
    return float((a[t == 255] < OPAQUE).mean())


def _row(label: str, sample: Sample, key: Callable[[Image.Image], Image.Image]) -> str:
    image = sample.decoded()
    started = time.perf_counter()
    alpha = key(image)
    ms = (time.perf_counter() - started) * 1000
    left, lost = background_left(alpha, sample.truth_alpha), subject_lost(alpha, sample.truth_alpha)
    size = f"{image.width}x{image.height}"
    return f"| {sample.filename} | {size} | {label} | {left:.2%} | {lost:.2%} | {ms:.0f} |"


def main() -> None:
    from cutout_dev.emulator.matte import corner_key, subject_alpha

    print("| sample | size | key | background left opaque | subject lost | ms |")
    print("|---|---|---|---|---|---|")
    for name in PHOTO_LIKE:
        sample = photo_like(name)
        subject_alpha(sample.decoded())  # warm up (imports, allocator) outside the timing
        print(_row("corner colour (before)", sample, corner_key))
        print(_row("border colour model", sample, subject_alpha))
    big = photo_like("table", size=(1632, 1224))
    print(_row("border colour model", big, subject_alpha))


if __name__ == "__main__":
    main()
