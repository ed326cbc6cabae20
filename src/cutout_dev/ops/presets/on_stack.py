"""``cutout presets set FILE`` and ``cutout presets show``: the presets a stack uses, changed without a redeploy.

``set`` validates the file exactly as ``cutout presets check`` does (nothing is stored unless it parses), then
stores it in the stack's parameter; ``show`` prints what is stored. ``show --output json`` prints the stored
document itself, so ``cutout presets show --json > presets.json`` gives back a file ``set`` takes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cutout.renditions.presets import PresetDocument, PresetError

from cutout_dev.ops.output import EXIT_ATTENTION, EXIT_ERROR, EXIT_OK, Output, fields, table
from cutout_dev.ops.presets.document import read_text
from cutout_dev.ops.presets.stored import PresetsParameter, StoredPresets, changes, compact
from cutout_dev.ops.target import StackTarget

# The renditions function keeps the document it read this long before reading it again (its parameter cache).
FUNCTION_CACHE_NOTE = "the renditions function reads it again within a minute (it caches the document briefly)"


def add_parser(actions: Any) -> None:
    put = actions.add_parser(
        "set",
        help="validate a presets file, then store it on the stack (no redeploy)",
        description=(
            "Validate FILE as `cutout presets check` does and, only if it has no problem, store it in the stack's "
            "presets parameter (output PresetsParameterName). `-` reads standard input; `{}` turns renditions off. "
            "Renditions already made are not re-rendered: `cutout renditions rebuild` does that, for free."
        ),
    )
    put.add_argument("file", metavar="FILE", help="the presets document (JSON), or - for standard input")
    put.set_defaults(run=run_set)

    show = actions.add_parser(
        "show",
        help="the presets stored on the stack (--output json: the document itself, a file `set` takes back)",
        description="The presets document the stack's renditions step uses, its version and whether it parses.",
    )
    show.set_defaults(run=run_show)


# -- set ---------------------------------------------------------------------------------------------------------
def _read(name: str) -> tuple[str, str]:
    """(the text, how to name it in messages)."""
    if name == "-":
        return sys.stdin.read(), "<stdin>"
    return read_text(Path(name)), name


def run_set(args: argparse.Namespace, target: StackTarget) -> int:
    out = Output.from_args(args)
    text, source = _read(args.file)
    try:
        parsed = PresetDocument.parse(text)
    except PresetError as exc:
        for line in exc.problems:
            out.note(f"{source}: {line}")
        out.note(f"cutout: {len(exc.problems)} problem(s) in {source}: nothing stored")
        return EXIT_ERROR
    document: dict[str, Any] = json.loads(text) if text.strip() else {}
    parameter = PresetsParameter.of(target)
    before = parameter.read()
    previous = before.raw if before.text is not None else {}
    unchanged = before.text is not None and before.text == compact(document)
    version = before.version if unchanged else parameter.write(document)
    changed = changes(previous, document)
    result: dict[str, Any] = {
        "parameter": parameter.name,
        "version": version,
        "previous_version": before.version,
        "stored": not unchanged,
        "presets": list(parsed.presets),
        "rules": len(parsed.rules),
        "changes": changed,
    }

    def draw(console: Any) -> None:
        names = ", ".join(result["presets"]) or "none: renditions off"
        if unchanged:
            console.print(f"{parameter.name} already holds this document (version {version}): nothing stored")
            return
        console.print(
            f"stored {len(parsed.presets)} preset(s) ({names}) and {len(parsed.rules)} rule(s) in {parameter.name} "
            f"(version {version})",
            markup=False,
            soft_wrap=True,
        )
        spelled = "; ".join(f"{what}: {', '.join(n)}" for what, n in changed.items() if n)
        if spelled:
            console.print(f"  {spelled}", markup=False, soft_wrap=True)
        console.print(f"  {FUNCTION_CACHE_NOTE}", markup=False, soft_wrap=True)
        if parsed.presets and (
            result["changes"]["changed"] or result["changes"]["rules"] or result["changes"]["added"]
        ):
            console.print(
                "  renditions made before are unchanged; re-render them for free: "
                f"cutout renditions rebuild s3://{target.bucket}/",
                markup=False,
                soft_wrap=True,
            )

    out.emit(result, draw)
    return EXIT_OK


# -- show --------------------------------------------------------------------------------------------------------
def _settings(preset: Any) -> str:
    if not isinstance(preset, dict):
        return str(preset)
    return "  ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in preset.items())


def draw_stored(stored: StoredPresets, problems: list[str], console: Any) -> None:
    raw = stored.raw
    state = "ok" if not problems else f"DOES NOT PARSE ({len(problems)} problem(s))"
    if stored.text is None:
        state = "nothing stored: no renditions (cutout presets set FILE)"
    console.print(
        fields(
            [
                ("Parameter", stored.parameter),
                ("Version", stored.version),
                ("Modified", stored.modified),
                ("Document", state),
            ]
        )
    )
    for line in problems:
        console.print(f"  {line}", markup=False, soft_wrap=True)
    presets = raw.get("presets", {}) if isinstance(raw, dict) else {}
    rules = raw.get("rules", []) if isinstance(raw, dict) else []
    if isinstance(presets, dict) and presets:
        console.print()
        console.print(table("Presets", ("name", "settings"), [(n, _settings(p)) for n, p in presets.items()]))
    if isinstance(rules, list) and rules:
        console.print()
        rows = [
            (json.dumps(r.get("prefix", "")), ", ".join(map(str, r.get("presets", []))))
            if isinstance(r, dict)
            else (str(r), "")
            for r in rules
        ]
        console.print(table("Rules (every matching rule applies, in order)", ("key prefix", "presets"), rows))


def run_show(args: argparse.Namespace, target: StackTarget) -> int:
    out = Output.from_args(args)
    stored = PresetsParameter.of(target).read()
    problems = stored.problems()
    out.emit(stored.raw, lambda console: draw_stored(stored, problems, console))
    if problems:
        out.note(f"cutout: the stored presets do not parse: the renditions step cannot use them ({problems[0]})")
        return EXIT_ATTENTION
    return EXIT_OK
