"""Reading a presets document: every field checked, every problem one line (``presets.<name>.<field>: what``).

Hand-written rather than a schema library: the layer ships boto3, requests and Powertools only, and the checks that
matter most here are across fields (a JPEG needs a background, a margin needs a crop), which a schema says badly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cutout.renditions.preset import (
    FORMAT_ALIASES,
    FORMATS,
    MAX_CANVAS_SIDE,
    MAX_MARGIN_PERCENT,
    MAX_MARGIN_PX,
    MAX_NAME_LENGTH,
    MAX_PREFIX_LENGTH,
    MAX_PRESETS,
    MAX_RULE_PRESETS,
    MAX_RULES,
    MAX_SHADOW_BLUR,
    MAX_SHADOW_OFFSET,
    OUTPUTS,
    Margin,
    Preset,
    Shadow,
)

NAME = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_NAME_LENGTH - 1}}}$")
COLOUR = re.compile(r"^#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
MARGIN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px|%)\s*$")
TOP_FIELDS = ("presets", "rules")
PRESET_FIELDS = (
    "format",
    "background",
    "crop",
    "margin",
    "canvas",
    "fill",
    "max_side",
    "upscale",
    "quality",
    "output",
    "shadow",
)
SHADOW_FIELDS = ("offset", "blur", "opacity", "color")
RULE_FIELDS = ("prefix", "presets")


@dataclass
class Problems:
    """The problems found so far, each one line; ``at`` is where in the document (``presets.thumb.format``)."""

    lines: list[str] = field(default_factory=list)

    def add(self, at: str, message: str) -> None:
        self.lines.append(f"{at}: {message}")

    def unknown_fields(self, at: str, data: Mapping[str, Any], known: tuple[str, ...]) -> None:
        for name in data:
            if name not in known:
                import difflib  # only for a document with a typo: not on every cold start

                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
                self.add(at, f"unknown field {name!r} ({hint})")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def colour(value: Any, at: str, problems: Problems) -> tuple[int, int, int] | None:
    """``"#RRGGBB"`` (or ``"#RGB"``) as an RGB triple."""
    if not isinstance(value, str) or not COLOUR.match(value):
        problems.add(at, f'{_show(value)} is not a colour: write "#RRGGBB", e.g. "#FFFFFF" for white')
        return None
    digits = value[1:] if len(value) == 7 else "".join(c * 2 for c in value[1:])
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _int_in(value: Any, at: str, problems: Problems, low: int, high: int) -> int | None:
    if not _is_int(value) or not low <= value <= high:
        problems.add(at, f"{_show(value)} is not a whole number from {low} to {high}")
        return None
    return int(value)


def _bool(value: Any, at: str, problems: Problems) -> bool:
    if not isinstance(value, bool):
        problems.add(at, f"{_show(value)} is not true or false")
        return False
    return value


def _margin(value: Any, at: str, problems: Problems) -> Margin:
    if _is_int(value):
        number = _int_in(value, at, problems, 0, MAX_MARGIN_PX)
        return Margin(number or 0)
    match = MARGIN.match(value) if isinstance(value, str) else None
    if match is None:
        problems.add(at, f'{_show(value)} is not a margin: pixels (40 or "40px") or a percentage ("5%")')
        return Margin()
    amount, unit = float(match.group(1)), match.group(2)
    limit = MAX_MARGIN_PERCENT if unit == "%" else MAX_MARGIN_PX
    if amount > limit:
        problems.add(at, f"{_show(value)} is over the most a margin may be ({limit}{unit})")
        return Margin()
    return Margin(amount, percent=unit == "%")


def _canvas(value: Any, at: str, problems: Problems) -> tuple[int, int] | None:
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(_is_int(v) for v in value):
        problems.add(at, f"{_show(value)} is not [width, height] in whole pixels")
        return None
    if not all(1 <= v <= MAX_CANVAS_SIDE for v in value):
        problems.add(at, f"{_show(list(value))} is beyond the largest canvas ({MAX_CANVAS_SIDE} x {MAX_CANVAS_SIDE})")
        return None
    return int(value[0]), int(value[1])


def _fill(value: Any, at: str, problems: Problems) -> float:
    if not _is_number(value) or not 0 < value <= 1:
        problems.add(at, f"{_show(value)} is outside (0, 1]: the share of the canvas the subject fills, e.g. 0.85")
        return 1.0
    return float(value)


def _format(value: Any, at: str, problems: Problems) -> str:
    name = FORMAT_ALIASES.get(value, value) if isinstance(value, str) else value
    if name not in FORMATS:
        problems.add(at, f"{_show(value)} is not a format: png, jpeg or webp")
        return "png"
    return str(name)


def _output(value: Any, at: str, problems: Problems) -> str:
    if value not in OUTPUTS:
        problems.add(at, f"{_show(value)} is not an output: image or alpha (the mask as a greyscale image)")
        return "image"
    return str(value)


def _opacity(value: Any, at: str, problems: Problems) -> float:
    if not _is_number(value) or not 0 < value <= 1:
        problems.add(at, f"{_show(value)} is outside (0, 1]")
        return Shadow.opacity
    return float(value)


def _offset(value: Any, at: str, problems: Problems) -> tuple[int, int]:
    good = isinstance(value, list | tuple) and len(value) == 2 and all(_is_int(v) for v in value)
    if not good or not all(abs(v) <= MAX_SHADOW_OFFSET for v in value):
        problems.add(at, f"{_show(value)} is not [right, down] in pixels, each within +-{MAX_SHADOW_OFFSET}")
        return Shadow.offset
    return int(value[0]), int(value[1])


def _shadow(value: Any, at: str, problems: Problems) -> Shadow | None:
    if value is True:
        return Shadow()
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        problems.add(at, f'{_show(value)} is not a shadow: true, or {{"offset", "blur", "opacity", "color"}}')
        return None
    problems.unknown_fields(at, value, SHADOW_FIELDS)
    default = Shadow()
    blur = value.get("blur", default.blur)
    return Shadow(
        offset=_offset(value["offset"], f"{at}.offset", problems) if "offset" in value else default.offset,
        blur=_int_in(blur, f"{at}.blur", problems, 0, MAX_SHADOW_BLUR) or 0,
        opacity=_opacity(value["opacity"], f"{at}.opacity", problems) if "opacity" in value else default.opacity,
        color=(colour(value["color"], f"{at}.color", problems) or default.color) if "color" in value else default.color,
    )


_READERS: dict[str, Callable[[Any, str, Problems], Any]] = {
    "format": _format,
    "background": lambda v, at, p: None if v is None else colour(v, at, p),
    "crop": _bool,
    "margin": _margin,
    "canvas": _canvas,
    "fill": _fill,
    "max_side": lambda v, at, p: _int_in(v, at, p, 1, MAX_CANVAS_SIDE),
    "upscale": _bool,
    "quality": lambda v, at, p: _int_in(v, at, p, 1, 100),
    "output": _output,
    "shadow": _shadow,
}


def _combinations(given: Mapping[str, Any], preset: Preset, at: str, problems: Problems) -> None:
    """What each field means depends on others: say so instead of quietly ignoring a setting."""
    alpha = preset.output == "alpha"
    if preset.format == "jpeg" and not alpha and preset.background is None and "background" not in given:
        problems.add(at, 'a JPEG has no transparency: set a background colour (e.g. "background": "#FFFFFF")')
    elif preset.format == "jpeg" and not alpha and "background" in given and given["background"] is None:
        problems.add(f"{at}.background", "a JPEG has no transparency: the background cannot be null")
    conflicts = [
        ("fill", "canvas" not in given, "fill is the share of a canvas: set canvas too"),
        ("margin", "canvas" in given, "a canvas places the subject by fill: drop margin (or the canvas)"),
        ("margin", "canvas" not in given and not preset.crop, "margin applies around a crop: set crop: true"),
        ("crop", "canvas" in given and not preset.crop, "a canvas always places the subject's box: drop crop"),
        ("max_side", "canvas" in given, "a canvas fixes the size: drop max_side (or the canvas)"),
        ("upscale", "max_side" not in given, "upscale applies to max_side: set max_side too"),
        ("quality", preset.format == "png", "PNG is lossless: quality applies to jpeg and webp"),
        ("background", alpha, "output alpha is the mask: a background does not apply"),
        ("shadow", alpha, "output alpha is the mask: a shadow does not apply"),
    ]
    for name, wrong, message in conflicts:
        if name in given and wrong:
            problems.add(f"{at}.{name}", message)


def read_preset(name: str, data: Any, problems: Problems) -> Preset | None:
    at = f"presets.{name}"
    if not NAME.match(name):
        problems.add(
            at, f"a preset name is 1-{MAX_NAME_LENGTH} of a-z, 0-9, '-' and '_', starting with a letter or digit"
        )
    if not isinstance(data, Mapping):
        problems.add(at, f"{_show(data)} is not an object of settings")
        return None
    problems.unknown_fields(at, data, PRESET_FIELDS)
    values = {key: _READERS[key](value, f"{at}.{key}", problems) for key, value in data.items() if key in _READERS}
    settings = {key: value for key, value in values.items() if value is not None}
    preset = Preset(name=name, **settings)
    _combinations(data, preset, at, problems)
    return preset


def read_presets(data: Any, problems: Problems) -> dict[str, Preset]:
    if not isinstance(data, Mapping):
        problems.add("presets", f"{_show(data)} is not an object of name: settings")
        return {}
    if len(data) > MAX_PRESETS:
        problems.add("presets", f"{len(data)} presets is more than the {MAX_PRESETS} a document may hold")
    presets = {}
    for name, settings in data.items():
        preset = read_preset(str(name), settings, problems)
        if preset is not None:
            presets[str(name)] = preset
    return presets


def read_rules(data: Any, known: Mapping[str, Preset], problems: Problems) -> list[tuple[str, tuple[str, ...]]]:
    if not isinstance(data, list):
        problems.add("rules", f'{_show(data)} is not a list of {{"prefix", "presets"}}')
        return []
    if len(data) > MAX_RULES:
        problems.add("rules", f"{len(data)} rules is more than the {MAX_RULES} a document may hold")
    rules = []
    for index, rule in enumerate(data):
        read = _read_rule(rule, f"rules[{index}]", known, problems)
        if read is not None:
            rules.append(read)
    return rules


def _read_rule(
    rule: Any, at: str, known: Mapping[str, Preset], problems: Problems
) -> tuple[str, tuple[str, ...]] | None:
    if not isinstance(rule, Mapping):
        problems.add(at, f'{_show(rule)} is not {{"prefix": ..., "presets": [...]}}')
        return None
    problems.unknown_fields(at, rule, RULE_FIELDS)
    prefix, names = rule.get("prefix"), rule.get("presets")
    if not isinstance(prefix, str) or len(prefix) > MAX_PREFIX_LENGTH:
        problems.add(f"{at}.prefix", f'{_show(prefix)} is not a key prefix (a string, "" for every key)')
        return None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        problems.add(f"{at}.presets", f"{_show(names)} is not a non-empty list of preset names")
        return None
    if len(names) > MAX_RULE_PRESETS:
        problems.add(f"{at}.presets", f"{len(names)} names is more than {MAX_RULE_PRESETS}")
    for name in names:
        if name not in known:
            problems.add(f"{at}.presets", f"unknown preset {name!r} (defined: {', '.join(known) or 'none'})")
    return prefix, tuple(dict.fromkeys(n for n in names if n in known))
