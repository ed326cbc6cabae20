"""``cutout presets ...``: the presets document, checked and tried without a stack, set and shown on one.

The group's subcommands come from SUBCOMMAND_MODULES, each with ``add_parser(actions)`` as the ops commands have
(see cutout_dev.ops). A subcommand that needs no stack sets ``stackless=True`` in its defaults: the CLI then calls
its ``run(args, None)`` without looking for a stack.
"""

from __future__ import annotations

import importlib
from typing import Any

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "cutout_dev.ops.presets.check",
    "cutout_dev.ops.presets.preview",
    "cutout_dev.ops.presets.on_stack",
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "presets",
        help="the renditions' presets: check a document and preview it (no stack needed); set and show a stack's",
        description="The presets document that names renditions and the rules that pick them (docs/renditions.md).",
    )
    actions = parser.add_subparsers(dest="presets_action", required=True, metavar="ACTION")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_parser(actions)
