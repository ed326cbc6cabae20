"""One preset: what a rendition looks like (format, background, crop, canvas, size, shadow), as a frozen value.

No imaging import: the paid path and the CLI's ``presets check`` read presets without Pillow. The limits are here
because they bound what a rendering may cost (memory is width x height x 4 bytes per intermediate copy).
"""

from __future__ import annotations

from dataclasses import dataclass

# Limits of a document (an operator's typo must not size a 50,000-pixel canvas; an uploader only names presets).
MAX_PRESETS = 20
MAX_RULES = 100
MAX_RULE_PRESETS = MAX_PRESETS
MAX_CANVAS_SIDE = 5000  # 25 megapixels: 100 MB as RGBA, the largest frame a rendition may have
MAX_MARGIN_PX = 2000
MAX_MARGIN_PERCENT = 100
MAX_SHADOW_BLUR = 100
MAX_SHADOW_OFFSET = 500
MAX_PREFIX_LENGTH = 1024  # S3's longest key
MAX_DOCUMENT_BYTES = 4096  # an SSM standard parameter, measured on the compact JSON `cutout presets set` stores
MAX_NAME_LENGTH = 40

FORMATS = ("png", "jpeg", "webp")
FORMAT_ALIASES = {"jpg": "jpeg"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
OUTPUTS = ("image", "alpha")
DEFAULT_QUALITY = {"jpeg": 90, "webp": 85}

# A pixel belongs to the subject when its alpha is above this (of 255): faint halos and matting noise do not count
# towards the subject's box (crop, canvas placement) nor towards the judge's figures.
SUBJECT_ALPHA_THRESHOLD = 8


@dataclass(frozen=True)
class Shadow:
    """A soft drop shadow under the subject, in output pixels: offset (right, down), Gaussian blur radius,
    opacity of the darkest part, colour."""

    offset: tuple[int, int] = (0, 12)
    blur: int = 16
    opacity: float = 0.35
    color: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class Margin:
    """Space kept around the subject when cropping: pixels of the cutout, or a percentage of the subject's box
    (of its width left and right, of its height top and bottom)."""

    value: float = 0
    percent: bool = False

    def around(self, width: int, height: int) -> tuple[int, int]:
        """The horizontal and vertical margin, in pixels, for a subject box of this size."""
        if not self.percent:
            return round(self.value), round(self.value)
        return round(width * self.value / 100), round(height * self.value / 100)


@dataclass(frozen=True)
class Preset:
    """A validated preset (build it with PresetDocument.parse: the constructor checks nothing)."""

    name: str
    format: str = "png"
    background: tuple[int, int, int] | None = None  # None: keep transparency
    crop: bool = False
    margin: Margin = Margin()
    canvas: tuple[int, int] | None = None
    fill: float = 1.0
    max_side: int | None = None
    upscale: bool = False
    quality: int | None = None  # None: the format's default (DEFAULT_QUALITY); PNG is lossless
    output: str = "image"  # "image" or "alpha" (the mask as a greyscale image)
    shadow: Shadow | None = None

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def encode_quality(self) -> int | None:
        return self.quality if self.quality is not None else DEFAULT_QUALITY.get(self.format)

    @property
    def places_subject(self) -> bool:
        """Whether the subject's box decides the frame (crop, or a canvas the subject is fitted to)."""
        return self.crop or self.canvas is not None
