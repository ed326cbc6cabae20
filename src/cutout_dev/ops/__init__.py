"""``cutout`` operator commands: the same code against a deployed stack (``--stack NAME``) and the local stack.

How a command plugs in: a module here with

    def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = subparsers.add_parser("name", help="...")
        parser.add_argument(...)
        parser.set_defaults(run=run)

    def run(args: argparse.Namespace, target: StackTarget) -> int:   # an exit status (ops.output.EXIT_*)
        out = Output.from_args(args)
        out.emit(result_document, draw_for_a_person)
        return EXIT_OK

listed in COMMAND_MODULES. The global options (``--stack``, ``--profile``, ``--region``, ``--output``/``--json``,
``--query``) are parsed by the CLI before ``run`` is called with the resolved ``StackTarget``. A module may add
several commands (``jobs`` and ``job``), each with its own ``run``.
"""

from __future__ import annotations

COMMAND_MODULES: tuple[str, ...] = (
    "cutout_dev.ops.status",
    "cutout_dev.ops.jobs",
    "cutout_dev.ops.spend",
    "cutout_dev.ops.redrive",
    "cutout_dev.ops.doctor",
    "cutout_dev.ops.upload",
    "cutout_dev.ops.backfill",
    "cutout_dev.ops.retry",
    "cutout_dev.ops.presets",
    "cutout_dev.ops.renditions",
)
