"""Synthetic cutouts with known geometry, for the renditions' tests and bench (made with Pillow, every byte ours).

What a real cutout has that a flat shape does not: a textured subject, a soft (semi-transparent) edge, an
off-centre subject, a faint halo a matting model leaves, and RGB under alpha 0 that is not black (here bright
green, the colour a wrong flattening or a straight-alpha resize would leak as a fringe).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

GARBAGE = (0, 255, 0)  # what the cutout holds under alpha 0
SUBJECT = (200, 30, 60)


@dataclass(frozen=True)
class Cutout:
    image: Image.Image  # RGBA
    box: tuple[int, int, int, int]  # the subject's box (alpha above the threshold), right/bottom exclusive

    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, format="PNG")
        return out.getvalue()


def cutout(
    size: tuple[int, int] = (1200, 900),
    box: tuple[int, int, int, int] = (150, 300, 750, 600),
    *,
    soft: int = 3,
    halo: bool = True,
    colour: tuple[int, int, int] = SUBJECT,
    garbage: tuple[int, int, int] = GARBAGE,
) -> Cutout:
    """A rectangle-ish subject filling ``box`` exactly at alpha > 8, its edge ramping over ``soft`` pixels inside
    the box; outside, alpha 0 over ``garbage`` (plus, with ``halo``, a faint alpha-4 ring that must not count)."""
    rgb = Image.new("RGB", size, garbage)
    # Texture: a gradient so a resize that mixes in the wrong colour shows, not a flat fill that hides it.
    texture = Image.linear_gradient("L").resize((box[2] - box[0], box[3] - box[1]))
    tinted = Image.merge("RGB", [texture.point(lambda v, c=c: max(0, min(255, c - 40 + v // 3))) for c in colour])
    rgb.paste(tinted, box[:2])
    alpha = Image.new("L", size, 0)
    draw = ImageDraw.Draw(alpha)
    if halo:
        draw.rectangle((box[0] - 6, box[1] - 6, box[2] + 5, box[3] + 5), fill=4)
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=0)
    for step in range(soft + 1):
        level = 255 if step == soft else 40 + step * (200 // max(soft, 1))
        draw.rectangle((box[0] + step, box[1] + step, box[2] - 1 - step, box[3] - 1 - step), fill=level)
    image = rgb.copy()
    image.putalpha(alpha)
    return Cutout(image, box)


def white_subject(size: tuple[int, int] = (800, 600)) -> Cutout:
    """A white disc with a blurred edge over black garbage: a straight-alpha resize would ring it dark grey."""
    alpha = Image.new("L", size, 0)
    ImageDraw.Draw(alpha).ellipse((200, 100, 600, 500), fill=255)
    alpha = alpha.filter(ImageFilter.GaussianBlur(4))
    image = Image.new("RGB", size, (0, 0, 0))
    ImageDraw.Draw(image).ellipse((150, 50, 650, 550), fill=(255, 255, 255))
    image.putalpha(alpha)
    return Cutout(image, alpha.point(lambda a: 255 if a > 8 else 0).getbbox() or (0, 0, *size))


def box_of(image: Image.Image, threshold: int = 8) -> tuple[int, int, int, int] | None:
    """The box of the pixels with alpha above ``threshold``."""
    return image.getchannel("A").point(lambda a: 255 if a > threshold else 0).getbbox()
