"""What the renditions need of the ORIGINAL upload: its EXIF orientation and stored size, read from its first bytes.

A PNG cutout usually carries no orientation tag, and whether Magic Hour applies the upload's tag before removing
the background is not documented: `open_cutout` turns the cutout upright from these two facts either way.
"""

from __future__ import annotations

import io
from typing import NamedTuple

from PIL import Image

# The header of a photo: EXIF sits in the first APP1 segment (at most 64 KiB), before the frame's size (JPEG SOF);
# large ICC or XMP segments can push the size further, hence more than one segment's worth.
HEAD_BYTES = 256 * 1024
_ORIENTATION = 0x0112


class OriginalImage(NamedTuple):
    orientation: int | None = None
    size: tuple[int, int] | None = None


def read_original(head: bytes) -> OriginalImage:
    """The orientation (1-8) and stored (width, height) of an image from its first bytes; what cannot be read is
    None (an unknown format, a header longer than `head`): the cutout is then used as it is."""
    try:
        with Image.open(io.BytesIO(head)) as image:
            size = image.size
            orientation = image.getexif().get(_ORIENTATION)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return OriginalImage()
    return OriginalImage(orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None, size)
