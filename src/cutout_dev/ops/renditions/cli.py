"""``cutout renditions rebuild``'s arguments and its printed result."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cutout_dev.ops.backfill import Bar, ask
from cutout_dev.ops.ingest import SendError
from cutout_dev.ops.output import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, Output, fields
from cutout_dev.ops.renditions.command import Options, RebuildTarget, run_rebuild
from cutout_dev.ops.target import StackTarget, TargetError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "renditions",
        help="the renditions made from the cutouts: rebuild them after the presets change (free)",
        description="Renditions are made from each stored cutout by the presets document (docs/renditions.md).",
    )
    actions = parser.add_subparsers(dest="renditions_action", required=True, metavar="ACTION")
    rebuild = actions.add_parser(
        "rebuild",
        help="re-render the renditions of the cutouts under a prefix (0 Magic Hour credits; resumable)",
        description=(
            "Re-render, from the stored cutouts, the renditions of the completed jobs whose uploads are under "
            "s3://bucket/prefix (the prefix relative to the input prefix, as every command's), with the presets "
            "stored now: the estimate first, a question (--yes when there is no terminal), a progress bar. It "
            "sends render requests to the renditions queue and never calls Magic Hour. Running it again after an "
            "interruption goes on where it stopped (checkpoint in ./.cutout/)."
        ),
    )
    rebuild.add_argument(
        "location",
        nargs="?",
        metavar="s3://bucket/prefix",
        help="whose renditions: the uploads under the input prefix + prefix (default: all of the stack's)",
    )
    rebuild.add_argument(
        "--prefix", metavar="P", help="the same as s3://bucket/P: the uploads under the input prefix + P"
    )
    rebuild.add_argument(
        "--preset",
        action="append",
        default=[],
        metavar="NAME",
        help="only this preset, where the document picks it for a job (repeat, or NAME,NAME)",
    )
    rebuild.add_argument("--dry-run", action="store_true", help="estimate only; send nothing")
    rebuild.add_argument("--yes", action="store_true", help="no question (needed when there is no terminal)")
    rebuild.add_argument("--restart", action="store_true", help="ignore an unfinished run's checkpoint")
    rebuild.set_defaults(run=run)


def run(args: argparse.Namespace, target: StackTarget) -> int:
    out = Output.from_args(args)
    if args.location and args.prefix:
        raise TargetError("give s3://bucket/prefix or --prefix P, not both")
    uri = args.location or f"s3://{target.bucket}/{args.prefix or ''}"
    options = Options(uri=uri, presets=args.preset, dry_run=args.dry_run, yes=args.yes, restart=args.restart)
    bar = Bar(enabled=not out.json and sys.stderr.isatty())
    try:
        doc = run_rebuild(RebuildTarget.from_target(target), options, confirm=ask, note=out.note, bar=bar)
    except SendError as exc:
        raise TargetError(f"rebuild stopped: {exc}; run it again to go on (the checkpoint has what was sent)") from exc
    out.emit(doc, lambda console: console.print(_fields(doc)))
    if doc["status"] == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_ERROR if doc["status"] == "declined" else EXIT_OK


def _fields(doc: dict[str, Any]) -> Any:
    skipped = ", ".join(f"{reason} {n}" for reason, n in doc["skipped"].items())
    per_preset = ", ".join(f"{name} {n:,}" for name, n in doc["by_preset"].items())
    rows: list[tuple[str, Any]] = [
        ("location", f"{doc['location']}  (keys under {doc['prefix'] or '(the whole bucket)'})"),
        (
            "presets",
            f"{doc['presets_parameter']} version {doc['presets_version']}"
            + (f"; only {', '.join(doc['only_presets'])}" if doc["only_presets"] else ""),
        ),
    ]
    if doc["resumed_after"] is not None:
        rows.append(("resumed after", f"{doc['resumed_after']}  ({doc['sent_before']} sent before)"))
    rows += [
        ("objects listed", f"{doc['objects']:,}"),
        ("skipped", f"{sum(doc['skipped'].values()):,}" + (f"  ({skipped})" if skipped else "")),
        ("cutouts", f"{doc['cutouts']:,}"),
        ("renditions", f"{doc['renditions']:,}" + (f"  ({per_preset})" if per_preset else "")),
        ("credits", "0  (rendered from the stored cutouts: no Magic Hour call)"),
        ("sent", f"{doc['sent']:,}  ({doc['status']})"),
        ("checkpoint", doc["checkpoint"] or "none written (a dry run writes nothing)"),
    ]
    if doc["status"] == "sent":
        rows.append(("follow", "cutout job ID shows each rendition; cutout jobs --flagged lists the flagged cutouts"))
    return fields(rows)
