"""``cutout presets check FILE``: validate a presets document, one line per problem (exit 1), no stack needed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cutout.renditions.presets import PresetDocument

from cutout_dev.ops.output import EXIT_ERROR, EXIT_OK, Output
from cutout_dev.ops.presets.document import problems_of, read_text
from cutout_dev.ops.target import StackTarget


def add_parser(actions: Any) -> None:
    parser = actions.add_parser(
        "check",
        help="validate a presets file: one line per problem, exit 1 if any (no stack needed)",
        description="Validate a presets document before anything uses it: every problem on a line of its own.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the presets document (JSON)")
    parser.set_defaults(run=run, stackless=True)


def run(args: argparse.Namespace, target: StackTarget | None) -> int:
    out = Output.from_args(args)
    path: Path = args.file
    problems = problems_of(path)
    doc: dict[str, Any] = {"file": str(path), "valid": not problems, "problems": problems}
    if not problems:
        document = PresetDocument.parse(read_text(path))
        doc |= {"presets": list(document.presets), "rules": len(document.rules)}

    def human(console: Any) -> None:
        if problems:
            for line in problems:
                console.print(line, markup=False, soft_wrap=True)
        else:
            names = ", ".join(doc["presets"]) or "none: no renditions"
            summary = f"{path}: ok ({len(doc['presets'])} presets: {names}; {doc['rules']} rules)"
            console.print(summary, markup=False, soft_wrap=True)

    out.emit(doc, human)
    if problems and not out.json:
        out.note(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in {path}")
    return EXIT_ERROR if problems else EXIT_OK
