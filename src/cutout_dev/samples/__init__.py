"""Photo-like sample images made here, each with its ground truth (dev tooling: tests, the demo, the renditions work).

``photo_like(name)`` returns a :class:`Sample`: the encoded file, its stored pixels, the subject's true alpha, the
perfect cutout (the subject's own colours under that alpha) and the EXIF orientation written into it. The scenes
(scenes.py) are a textured or plain background under light, a subject off-centre with anti-aliased, feathered and
translucent parts, and a soft shadow that is background.
``portrait`` is an upright picture stored sideways as a landscape JPEG with EXIF Orientation 6, as a phone writes
it: a viewer that honours the tag shows it upright, one that does not shows it on its side.

Deterministic: a name (and seed) always draws the same pixels on a given machine. The committed files under
samples/ are written by ``cutout_dev.make_samples`` (``cutout samples``).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PIL import Image

from .sample import Sample
from .scenes import Scene, portrait, studio, table

# name -> (draw, upright size, file name, EXIF orientation). Sizes keep each committed JPEG far under 300 KB.
_SCENES: dict[str, tuple[Callable[[tuple[int, int], np.random.Generator], Scene], tuple[int, int], str, int | None]] = {
    "table": (table, (480, 360), "mug on a table.jpg", None),
    "studio": (studio, (480, 360), "ball in a studio.jpg", None),
    "portrait": (portrait, (270, 360), "bottle portrait (EXIF 6).jpg", 6),
}
PHOTO_LIKE: tuple[str, ...] = tuple(_SCENES)
ORIENTATION_TAG = 0x0112
JPEG_QUALITY = 88

# Orientation -> the transpose that turns the upright picture into the pixels a camera stores (the inverse of
# what a viewer applies: Sample.upright).
_STORED: dict[int, Image.Transpose] = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _bytes(values: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    out: npt.NDArray[np.uint8] = np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)
    return out


def filename(name: str) -> str:
    """The file name the sample ``name`` is committed under in samples/ (without drawing it)."""
    return _SCENES[name][2]


def photo_like(name: str, *, size: tuple[int, int] | None = None, seed: int = 27) -> Sample:
    """The sample ``name`` (one of PHOTO_LIKE), drawn upright at ``size`` (width, height; default: as committed)."""
    try:
        draw, default_size, file_name, orientation = _SCENES[name]
    except KeyError:
        raise ValueError(f"unknown photo-like sample {name!r}; known: {', '.join(PHOTO_LIKE)}") from None
    rgb, subject = draw(size or default_size, np.random.default_rng([seed, *name.encode()]))
    alpha = subject[..., 3]
    # The subject's own colour (un-premultiplied): what a perfect cutout holds, with no trace of the background.
    colour = np.where(alpha[..., None] > 0, subject[..., :3] / np.maximum(alpha, 1e-6)[..., None], 0)
    image = Image.fromarray(_bytes(rgb), mode="RGB")
    truth = Image.fromarray(_bytes(alpha), mode="L")
    cutout = Image.fromarray(_bytes(np.dstack([colour, alpha])), mode="RGBA")
    options: dict[str, object] = {"quality": JPEG_QUALITY, "optimize": True}
    if orientation is not None:
        image, truth, cutout = (img.transpose(_STORED[orientation]) for img in (image, truth, cutout))
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = orientation
        options["exif"] = exif.tobytes()
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return Sample(name, file_name, image, truth, orientation, out.getvalue(), cutout)


__all__ = ["PHOTO_LIKE", "Sample", "filename", "photo_like"]
