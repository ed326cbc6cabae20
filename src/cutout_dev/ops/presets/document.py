"""Reading a presets file for the CLI: its problems as one line each, the path in front, as a linter prints them."""

from __future__ import annotations

from pathlib import Path

from cutout.renditions.presets import PresetDocument, PresetError

from cutout_dev.ops.target import TargetError

# What `cutout presets preview` renders when no presets file is given or found: the marketplace JPEG on white,
# a WebP thumbnail and the mask, as docs/renditions.md starts with.
EXAMPLE = {
    "presets": {
        "marketplace": {"format": "jpeg", "background": "#FFFFFF", "canvas": [2000, 2000], "fill": 0.85, "quality": 90},
        "thumb": {"format": "webp", "max_side": 400},
        "mask": {"format": "png", "output": "alpha"},
    },
    "rules": [{"prefix": "", "presets": ["marketplace", "thumb", "mask"]}],
}
DEFAULT_FILE = Path("presets.json")


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else exc}") from exc


def problems_of(path: Path) -> list[str]:
    """Every problem of the file, each prefixed with its path; [] when it may be used."""
    try:
        PresetDocument.parse(read_text(path))
    except PresetError as exc:
        return [f"{path}: {line}" for line in exc.problems]
    return []


def load(path: Path | None) -> tuple[PresetDocument, str]:
    """The document to use and where it came from: the file given, else ./presets.json, else the example."""
    if path is None and DEFAULT_FILE.is_file():
        path = DEFAULT_FILE
    if path is None:
        return PresetDocument.parse(EXAMPLE), "the example presets (marketplace, thumb, mask)"
    try:
        return PresetDocument.parse(read_text(path)), str(path)
    except PresetError as exc:
        raise TargetError(f"{path}: {'; '.join(exc.problems)} (cutout presets check {path} lists them)") from exc
