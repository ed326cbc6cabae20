"""The presets document: named presets and the rules that pick them for an upload (docs/renditions.md).

    {"presets": {"marketplace": {"format": "jpeg", "background": "#FFFFFF", "canvas": [2000, 2000], "fill": 0.85},
                 "thumb": {"format": "webp", "max_side": 400}},
     "rules": [{"prefix": "shop/", "presets": ["marketplace", "thumb"]}]}

Which presets an upload gets (``PresetDocument.pick``): every rule whose prefix starts the key under the input
prefix, in document order, then the names the upload asked for in its metadata (``x-amz-meta-cutout-presets``),
each preset once. Metadata adds to the rules, never removes: the operator's rules are what the shop relies on.
Metadata carries names only, never settings, so an uploader cannot size a rendition; a name the document does not
define is reported (``Selection.unknown``), never an error.

No imaging import here: the paid path may read presets without loading Pillow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from cutout.renditions.errors import PresetError
from cutout.renditions.preset import (
    MAX_CANVAS_SIDE,
    MAX_DOCUMENT_BYTES,
    MAX_NAME_LENGTH,
    MAX_PRESETS,
    MAX_RULES,
    SUBJECT_ALPHA_THRESHOLD,
    Margin,
    Preset,
    Shadow,
)
from cutout.renditions.validation import TOP_FIELDS, Problems, read_presets, read_rules

__all__ = [
    "MAX_CANVAS_SIDE",
    "MAX_DOCUMENT_BYTES",
    "MAX_PRESETS",
    "MAX_REQUESTED",
    "MAX_RULES",
    "SUBJECT_ALPHA_THRESHOLD",
    "Margin",
    "Preset",
    "PresetDocument",
    "PresetError",
    "Selection",
    "Shadow",
    "parse_requested",
    "rendition_key",
    "validate",
]

METADATA_KEY = "cutout-presets"  # x-amz-meta-cutout-presets: "marketplace,thumb"
MAX_REQUESTED = MAX_PRESETS  # names read from one upload's metadata; the rest are ignored


@dataclass(frozen=True)
class Selection:
    """The presets to render for one upload, and the names it asked for that the document does not define."""

    presets: tuple[Preset, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.presets)


@dataclass(frozen=True)
class PresetDocument:
    """A validated presets document (build it with ``parse``). Empty = no presets = no renditions."""

    presets: Mapping[str, Preset] = field(default_factory=dict)
    rules: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, data: Mapping[str, Any] | str | bytes | None) -> PresetDocument:
        """The document, or PresetError listing every problem (one line each). None, "" and {} are empty."""
        problems = Problems()
        document = _decode(data, problems)
        if problems.lines:
            raise PresetError(problems.lines)
        if not isinstance(document, Mapping):
            raise PresetError([f'the document is {type(document).__name__}, not an object {{"presets", "rules"}}'])
        problems.unknown_fields("document", document, TOP_FIELDS)
        presets = read_presets(document.get("presets", {}), problems)
        rules = read_rules(document.get("rules", []), presets, problems)
        if problems.lines:
            raise PresetError(problems.lines)
        return cls(presets=presets, rules=tuple(rules))

    @property
    def empty(self) -> bool:
        return not self.presets

    def pick(self, relative_key: str, requested: Sequence[str] = ()) -> Selection:
        """The presets for the upload at ``relative_key`` (its key under the input prefix): matching rules in
        document order, then the requested names; each once."""
        names: list[str] = [n for prefix, rule in self.rules if relative_key.startswith(prefix) for n in rule]
        unknown: list[str] = []
        for name in requested:
            (names if name in self.presets else unknown).append(name)
        chosen = tuple(self.presets[n] for n in dict.fromkeys(names))
        return Selection(presets=chosen, unknown=tuple(dict.fromkeys(unknown)))

    def named(self, names: Sequence[str]) -> Selection:
        """Exactly these presets (a rebuild's ``--preset``, the preview's), the undefined ones in ``unknown``."""
        return Selection(
            presets=tuple(self.presets[n] for n in dict.fromkeys(names) if n in self.presets),
            unknown=tuple(dict.fromkeys(n for n in names if n not in self.presets)),
        )


def _decode(data: Mapping[str, Any] | str | bytes | None, problems: Problems) -> Any:
    if data is None:
        return {}
    if isinstance(data, Mapping):
        size = len(json.dumps(data, separators=(",", ":"), default=str).encode("utf-8"))
    else:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            problems.add("document", f"not JSON: {exc}")
            return None
        size = len(json.dumps(data, separators=(",", ":")).encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        problems.add("document", f"{size} bytes as compact JSON is more than the {MAX_DOCUMENT_BYTES} it may hold")
    return data


def validate(data: Mapping[str, Any] | str | bytes | None) -> list[str]:
    """Every problem of the document, one line each; [] when it may be used."""
    try:
        PresetDocument.parse(data)
    except PresetError as exc:
        return exc.problems
    return []


def parse_requested(metadata_value: str | None) -> tuple[str, ...]:
    """The preset names in an upload's ``x-amz-meta-cutout-presets`` ("marketplace, thumb"): split on commas,
    trimmed, lower-cased (S3 metadata is often typed by hand), each once, at most MAX_REQUESTED. Names only:
    whatever else is written there is just a name no document defines."""
    if not metadata_value:
        return ()
    names = (part.strip().lower()[: MAX_NAME_LENGTH + 1] for part in metadata_value.split(","))
    return tuple(dict.fromkeys(n for n in names if n))[:MAX_REQUESTED]


def rendition_key(renditions_prefix: str, preset: Preset, relative_key: str) -> str:
    """renditions/ + marketplace + /shop/shoe.jpg: the upload's path under the preset's name, its extension the
    preset's (``shop/shoe.png`` as a JPEG is ``renditions/marketplace/shop/shoe.jpg``)."""
    path = PurePosixPath(relative_key.lstrip("/") or "image")
    if path.name in {"", ".", ".."}:
        path = path / "image"
    return f"{renditions_prefix}{preset.name}/{path.with_suffix('.' + preset.extension)}"
