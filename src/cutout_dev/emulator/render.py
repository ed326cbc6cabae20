"""The "model": fetch the inputs for real and produce a transparent PNG (matte.py keys the subject out).

Fetching for real matters: the pipeline hands Magic Hour presigned S3 URLs, and only a real
GET proves they work (right host, not expired, no redirect) and that the bytes are the object.

EXIF orientation: whether Magic Hour turns a photo upright (applies its EXIF Orientation) before removing the
background is not documented (docs/hostile-inputs.md has what evidence there is). ``exif_transpose`` picks the
behaviour: False returns the pixels as stored (a phone's portrait comes back on its side, with no tag to turn it),
True turns them upright first. Either way the PNG carries no EXIF.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import requests
from PIL import Image, ImageChops, ImageOps

from .matte import subject_alpha

# Guard against decompression bombs without rejecting large but honest photos.
Image.MAX_IMAGE_PIXELS = 200_000_000


class RenderError(Exception):
    """A render failure with the code/message the project's `error` field will carry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Fetched:
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


UploadLookup = Callable[[str], bytes | None]


def fetch(source: str, uploads: UploadLookup, *, timeout: float, max_bytes: int) -> Fetched:
    """Read an input: an http(s) URL (no redirects, like signed storage URLs) or an uploaded asset."""
    if source.startswith("api-assets/"):
        data = uploads(source)
        if data is None:
            raise RenderError("invalid_image_path", f"file path '{source}' does not exist")
        return Fetched(data)
    try:
        with requests.get(source, timeout=timeout, allow_redirects=False, stream=True) as resp:
            if resp.status_code != 200:
                raise RenderError(
                    "invalid_image_path",
                    f"Unable to download the file from the provided URL (HTTP {resp.status_code})",
                )
            chunks: list[bytes] = []
            total = 0
            for chunk in resp.iter_content(64 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise RenderError("file_too_large", f"The file exceeds the {max_bytes} byte limit")
                chunks.append(chunk)
            return Fetched(b"".join(chunks))
    except requests.RequestException as exc:
        raise RenderError(
            "invalid_image_path", f"Unable to download the file from the provided URL ({type(exc).__name__})"
        ) from exc


def _decode(data: bytes, what: str) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        # Magic Hour's code for bytes that are not a valid image ("invalid_file_format" is for an unsupported type).
        message = f"The {what} file contains invalid data. Please try a different file."
        raise RenderError("invalid_image_file", message) from exc
    return img


def remove_background(
    data: bytes, background: bytes | None = None, *, threshold: int = 24, exif_transpose: bool = False
) -> bytes:
    """An RGBA PNG of the input's size: the subject kept, the background transparent (matte.py), optionally
    composited over ``background``. ``threshold`` is the plain-background key's tolerance; ``exif_transpose``
    turns the input upright first (see the module docstring).
    """
    decoded = _decode(data, "image")
    img = (ImageOps.exif_transpose(decoded) if exif_transpose else decoded).convert("RGBA")
    keep = subject_alpha(img.convert("RGB"), flat_threshold=threshold)
    img.putalpha(ImageChops.multiply(img.getchannel("A"), keep))
    if background is not None:
        bg = _decode(background, "background image").convert("RGBA").resize(img.size)
        img = Image.alpha_composite(bg, img)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
