"""Generate the demo/e2e sample images in ``samples/`` (small, made here, no third-party content).

Simple shapes on plain backgrounds (so the emulator's background removal has an unambiguous answer), in several
formats, with names that exercise key encoding (spaces, unicode, ``+``, parentheses), plus one non-image with an
image extension. Run: ``python -m cutout_dev.make_samples [--out samples]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"
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


SAMPLES: dict[str, tuple[Callable[[], Image.Image], str, dict[str, object]]] = {
    "red flower.png": (_flower, "PNG", {"optimize": True}),
    "café (1).jpg": (_square, "JPEG", {"quality": 92}),
    "green leaf.webp": (_leaf, "WEBP", {"lossless": True}),
    "étoile+1.png": (_star, "PNG", {"optimize": True}),
}


def generate(out: Path = SAMPLES_DIR) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, (draw, fmt, options) in SAMPLES.items():
        path = out / name
        draw().save(path, fmt, **options)
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
