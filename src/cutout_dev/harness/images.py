"""The small, distinct images the harnesses upload, and the names their keys are made of."""

from __future__ import annotations

import io
import random

from PIL import Image

NAMES = ("photo", "red flower", "sku 1234+blue", "café", "shoe (side)", "item")


def image(rng: random.Random, fmt: str) -> bytes:
    """A light background with a dark rectangle on it (a subject to cut out), in `fmt` (PNG, JPEG)."""
    w, h = rng.randint(32, 96), rng.randint(32, 96)
    background = (rng.randint(200, 255), rng.randint(200, 255), rng.randint(200, 255))
    subject = (rng.randint(0, 120), rng.randint(0, 120), rng.randint(0, 120))
    img = Image.new("RGB", (w, h), background)
    img.paste(subject, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()
