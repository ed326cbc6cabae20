"""The emulator's stand-in for Magic Hour's model: how much of each pixel is the subject (an alpha matte).

Not Magic Hour's quality, and not meant to be: it makes local cutouts look like cutouts, so a newcomer does not judge
the pipeline by a table left opaque, and it is cheap enough for the soak, the floods and the bench. Two keys:

- A plain background (the border is one colour): pixels within ``flat_threshold`` of the top-left colour (largest
  channel difference) are background. Exact for the synthetic test images, and costs almost nothing.
- Anything else (a gradient, wood, cloth): a colour key learned from the frame's border, which a photographed
  subject rarely touches. The border's colours are clustered (k-means); a pixel is background when it lies close to
  the ray of one cluster's colour, i.e. that colour darker or slightly lighter, so lighting gradients and cast
  shadows count as background. How close is learned from the border's own spread; the alpha ramps over a band past
  that, which gives soft edges. Specks are dropped; an enclosed hole stays background only if it carries the
  border's texture (the table seen through a mug's handle) and is filled otherwise (a flat label whose colour
  happens to be the table's). It works on a copy whose longest side is WORK_SIDE and scales the matte back up.

Why our own key and not OpenCV's GrabCut: measured on the generated photo-like samples (cutout_dev.samples; figures
in docs/emulator.md), GrabCut initialised with a border rectangle left 2-12 % of the background opaque, filled
the mug's handle and kept the shadows, at 1.2-3.6 s per 480x360 image on the dev machine; this key leaves about 1 %
in a fraction of the time, with numpy and Pillow alone (no 64 MB dev dependency). Its known limit: a subject cut off
at the frame lends its colours to the border model, and the part at the frame is keyed out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageChops, ImageDraw, ImageFilter

WORK_SIDE = 256  # the matte's working resolution (longest side): plenty for a stand-in, cheap at 12 MP too
CLUSTERS = 8
SHADOW_RANGE = (0.45, 1.15)  # a background colour seen from half as bright (shadow) to a little brighter (light)
MAX_HOLES = 64  # holes judged one by one; beyond that (noise), they stay as keyed

Floats = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


def subject_alpha(rgb: Image.Image, *, flat_threshold: int = 24) -> Image.Image:
    """The matte (mode L, ``rgb``'s size): 255 subject, 0 background, in between on edges."""
    rgb = rgb.convert("RGB")
    if _border_is_flat(rgb, flat_threshold):
        return corner_key(rgb, flat_threshold)
    width, height = rgb.size
    scale = min(1.0, WORK_SIDE / max(width, height))
    small = rgb.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX)
    alpha = _border_key(small)
    return Image.fromarray(alpha, mode="L").resize((width, height), Image.Resampling.BILINEAR)


def _ring(width: int, height: int) -> Mask:
    r = max(2, round(0.04 * min(width, height)))
    ring = np.zeros((height, width), dtype=bool)
    ring[:r], ring[-r:], ring[:, :r], ring[:, -r:] = True, True, True, True
    return ring


def _border_is_flat(rgb: Image.Image, threshold: int) -> bool:
    """At most 1 % of the border ring's pixels further than ``threshold`` from the top-left colour."""
    w, h = rgb.size
    r = max(2, round(0.04 * min(w, h)))
    # The four strips only: a 12-megapixel photo is never copied whole into an array for this.
    strips = [rgb.crop(box) for box in ((0, 0, w, r), (0, h - r, w, h), (0, 0, r, h), (w - r, 0, w, h))]
    ring = np.concatenate([np.asarray(s, dtype=np.int16).reshape(-1, 3) for s in strips])
    corner = np.asarray(rgb.crop((0, 0, 1, 1)), dtype=np.int16).reshape(3)
    far = np.abs(ring - corner).max(axis=1) > threshold
    return float(far.mean()) <= 0.01


def corner_key(rgb: Image.Image, threshold: int = 24) -> Image.Image:
    """Pixels within ``threshold`` of the top-left colour are background: the key for a plain background (and,
    before the border model, for every image)."""
    solid = Image.new("RGB", rgb.size, rgb.getpixel((0, 0)))
    r, g, b = ImageChops.difference(rgb, solid).split()
    distance = ImageChops.lighter(ImageChops.lighter(r, g), b)  # per-pixel max channel distance
    return distance.point(lambda v: 255 if v > threshold else 0)


def _kmeans(points: Floats, k: int, rounds: int = 10) -> Floats:
    # Seeded from evenly spaced points, not at random: the same image always gives the same matte.
    centres = points[np.linspace(0, len(points) - 1, min(k, len(points))).astype(int)].copy()
    for _ in range(rounds):
        nearest = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        for j in range(len(centres)):
            members = points[nearest == j]
            if len(members):
                centres[j] = members.mean(0)
    result: Floats = centres
    return result


def _ray_distance(pixels: Floats, centres: Floats) -> Floats:
    """Each pixel's distance to the nearest colour ``s * centre`` with s in SHADOW_RANGE."""
    best: Floats | None = None
    for c in centres:
        s = np.clip(pixels @ c / (float(c @ c) + 1e-3), *SHADOW_RANGE)
        d = np.sqrt(((pixels - s[..., None] * c) ** 2).sum(-1)).astype(np.float32)
        best = d if best is None else np.minimum(best, d)
    assert best is not None
    return best


def _texture(p: Floats) -> Floats:
    """How much each pixel differs from its 3x3 neighbourhood: high on grain and weave, low on a flat colour."""
    img = Image.fromarray(np.clip(p, 0, 255).astype(np.uint8), mode="RGB")
    local = np.asarray(img.filter(ImageFilter.BoxBlur(1)), dtype=np.float32)
    return np.abs(p - local).sum(-1).astype(np.float32)


def _border_key(small: Image.Image) -> npt.NDArray[np.uint8]:
    raw = np.asarray(small, dtype=np.float32)
    pixels = np.asarray(small.filter(ImageFilter.BoxBlur(1)), dtype=np.float32)  # compare local means, not grain
    ring = _ring(small.width, small.height)
    distance = _ray_distance(pixels, _kmeans(pixels[ring], CLUSTERS))
    tolerance = float(np.percentile(distance[ring], 98)) * 1.25 + 4
    alpha = np.clip((distance - tolerance) / (0.75 * tolerance + 8), 0, 1)
    alpha *= _dilate(_erode(alpha > 0.5, 1), 2)  # no specks; room around the rest for its soft edges
    texture = _texture(raw)
    _fill_flat_holes(alpha, texture, float(np.median(texture[ring])))
    matte: npt.NDArray[np.uint8] = np.round(alpha * 255).astype(np.uint8)
    return matte


def _fill_flat_holes(alpha: Floats, texture: Floats, border_texture: float) -> None:
    """Background regions the frame's border cannot reach are subject unless they look like the border (in place)."""
    if border_texture < 2.0:
        return  # a smooth background: colour alone decided, and a hole of its colour is background
    background = alpha < 0.5
    holes = background & ~_reachable(background)
    # 255 = not a hole; each hole is flooded with its own number in turn. A copy: Pillow may share a numpy array's
    # memory read-only, and floodfill's writes would be lost.
    labels = Image.fromarray(np.where(holes, 0, 255).astype(np.uint8), mode="L").copy()
    for n in range(1, 1 + MAX_HOLES):
        left = np.argwhere(np.asarray(labels) == 0)
        if not len(left):
            return
        y, x = (int(v) for v in left[0])
        ImageDraw.floodfill(labels, (x, y), n)  # pure Python, but a hole is small
        hole = np.asarray(labels) == n
        if float(np.median(texture[hole])) < 0.8 * border_texture:
            alpha[hole] = 1.0


def _reachable(background: Mask) -> Mask:
    """The background connected (8-neighbours) to the frame: grown from the frame one 3x3 step at a time."""
    reach = np.zeros_like(background)
    reach[0], reach[-1], reach[:, 0], reach[:, -1] = background[0], background[-1], background[:, 0], background[:, -1]
    while True:
        grown = _dilate(reach, 1) & background
        if np.array_equal(grown, reach):
            return reach
        reach = grown


def _dilate(mask: Mask, r: int) -> Mask:
    """Max over a (2r+1)-square, as two 1-D passes of shifted ORs (numpy; Pillow's rank filter is ~30x slower)."""
    out = mask.copy()
    for _ in range(r):
        step = out.copy()
        step[1:] |= out[:-1]
        step[:-1] |= out[1:]
        out = step.copy()
        out[:, 1:] |= step[:, :-1]
        out[:, :-1] |= step[:, 1:]
    return out


def _erode(mask: Mask, r: int) -> Mask:
    return ~_dilate(~mask, r)
