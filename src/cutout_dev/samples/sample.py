"""One generated photo-like sample: the file's bytes, the pixels it holds, and the truth about its subject."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

# What a viewer does to the stored pixels for each EXIF Orientation (the transpose Pillow's exif_transpose applies).
_UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Sample:
    """A photo-like image with its ground truth.

    ``image`` is the RGB pixels as the file stores them (before the JPEG's loss); ``truth_alpha`` (mode L, same size
    and layout) is how much of each pixel is the subject: 255 subject, 0 background, between on soft edges and the
    translucent part. ``exif_orientation`` is the file's Orientation tag (None: none written), so a viewer that
    honours EXIF shows ``upright(image)``. ``data`` is the encoded file, the bytes committed under samples/.
    ``cutout`` (RGBA, stored layout) is what a perfect background remover returns: the subject's own colours under
    ``truth_alpha``, with no trace of the background, even in soft edges and the translucent part.
    """

    name: str
    filename: str
    image: Image.Image
    truth_alpha: Image.Image
    exif_orientation: int | None
    data: bytes
    cutout: Image.Image

    def upright(self, img: Image.Image) -> Image.Image:
        """``img`` (in the stored layout, e.g. ``truth_alpha`` or a cutout of the raw pixels) as a viewer shows it."""
        transpose = _UPRIGHT.get(self.exif_orientation or 1)
        return img.transpose(transpose) if transpose is not None else img.copy()

    @property
    def upright_truth_alpha(self) -> Image.Image:
        return self.upright(self.truth_alpha)

    def decoded(self, *, exif_transpose: bool = False) -> Image.Image:
        """The file read back, as a reader that ignores (default) or honours the EXIF orientation gets it."""
        img = Image.open(io.BytesIO(self.data))
        img.load()
        return ImageOps.exif_transpose(img) if exif_transpose else img
