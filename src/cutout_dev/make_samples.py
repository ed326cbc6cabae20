"""Generate the demo/e2e sample images in ``samples/`` (small, made here, no third-party content).

Simple shapes on plain backgrounds, in several formats, with names that exercise key encoding (spaces, unicode,
``+``, parentheses); two photo-like JPEGs from ``cutout_dev.samples`` (a mug on a wood table, and a portrait stored
sideways with EXIF Orientation 6); plus one non-image with an image extension.
Run: ``python -m cutout_dev.make_samples [--out samples]``.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

from cutout_dev.samples import filename, photo_like

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"
ORIENTATION = 0x0112
NON_IMAGE = "notes.jpg"  # text with an image extension: must be rejected by content, not by name


def _flower() -> Image.Image:
    img = Image.new("RGB", (160, 120), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for dx, dy in ((-18, 0), (18, 0), (0, -18), (0, 18)):
        draw.ellipse((80 + dx - 16, 60 + dy - 16, 80 + dx + 16, 60 + dy + 16), fill=(220, 30, 40))
    draw.ellipse((68, 48, 92, 72), fill=(250, 200, 20))
    return img


def _square() -> Image.Image:
    img = Image.new("RGB", (140, 140), (225, 225, 225))
    ImageDraw.Draw(img).rectangle((35, 35, 105, 105), fill=(30, 70, 200))
    return img


def _leaf() -> Image.Image:
    img = Image.new("RGB", (150, 100), (250, 240, 120))
    ImageDraw.Draw(img).ellipse((25, 25, 125, 75), fill=(40, 150, 60))
    return img


def _star() -> Image.Image:
    img = Image.new("RGB", (120, 120), (20, 20, 40))
    points = [(60, 10), (74, 45), (110, 45), (81, 67), (92, 105), (60, 82), (28, 105), (39, 67), (10, 45), (46, 45)]
    ImageDraw.Draw(img).polygon(points, fill=(255, 215, 0))
    return img


def _encoded(draw: Callable[[], Image.Image], fmt: str, **options: object) -> Callable[[], bytes]:
    def encode() -> bytes:
        out = io.BytesIO()
        draw().save(out, fmt, **options)
        return out.getvalue()

    return encode


def _photo(name: str) -> Callable[[], bytes]:
    return lambda: photo_like(name).data


# File name -> its bytes, in upload order (the demo uploads the first one twice).
SAMPLES: dict[str, Callable[[], bytes]] = {
    "red flower.png": _encoded(_flower, "PNG", optimize=True),
    "café (1).jpg": _encoded(_square, "JPEG", quality=92),
    "green leaf.webp": _encoded(_leaf, "WEBP", lossless=True),
    "étoile+1.png": _encoded(_star, "PNG", optimize=True),
    filename("table"): _photo("table"),
    filename("portrait"): _photo("portrait"),
}


def _same_picture(path: Path, data: bytes) -> bool:
    """True when ``path`` already holds ``data``'s picture. The photo-like samples are drawn with float maths that
    may round a pixel differently on another CPU: such a file is left as committed, so a test run (which
    regenerates the samples) never dirties a clone."""
    if not path.is_file():
        return False
    old = path.read_bytes()
    if old == data:
        return True
    try:
        a, b = Image.open(io.BytesIO(old)), Image.open(io.BytesIO(data))
        if (a.size, a.mode, a.getexif().get(ORIENTATION)) != (b.size, b.mode, b.getexif().get(ORIENTATION)):
            return False
        diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
        return max(diff.histogram()[4:]) == 0  # no pixel off by more than 3 levels
    except OSError:
        return False


def generate(out: Path = SAMPLES_DIR) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, encode in SAMPLES.items():
        path = out / name
        data = encode()
        if not _same_picture(path, data):
            path.write_bytes(data)
        written.append(path)
    notes = out / NON_IMAGE
    notes.write_text("Not an image: Cutout must reject this upload without calling Magic Hour.\n", encoding="utf-8")
    written.append(notes)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR)
    args = parser.parse_args()
    for path in generate(args.out):
        print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
