"""``cutout presets preview CUTOUT.png -o DIR``: render presets from a local cutout with no stack at all, so an
operator tunes ``fill`` and margins in seconds. The files land as they would in the bucket (``DIR/<preset>/<name>``)
and the cutout is judged as the renditions step judges it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cutout_dev.ops.output import EXIT_ERROR, EXIT_OK, Output, table
from cutout_dev.ops.presets.document import load
from cutout_dev.ops.target import StackTarget, TargetError


def add_parser(actions: Any) -> None:
    parser = actions.add_parser(
        "preview",
        help="render presets from a local cutout into a folder (no stack needed)",
        description=(
            "Render presets from a cutout on this machine, as the renditions step would, into DIR/<preset>/. "
            "Presets: --presets FILE, else ./presets.json, else the example set (marketplace, thumb, mask)."
        ),
    )
    parser.add_argument("cutout", type=Path, metavar="CUTOUT.png", help="a cutout (PNG with transparency)")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="where to write the renditions")
    parser.add_argument("--presets", type=Path, default=None, metavar="FILE", help="the presets document (JSON)")
    parser.add_argument(
        "--preset",
        action="append",
        default=[],
        metavar="NAME",
        help="render only this preset (repeat, or NAME,NAME; default: every preset of the document)",
    )
    parser.add_argument(
        "--original",
        type=Path,
        default=None,
        metavar="PHOTO",
        help="the upload the cutout came from: its EXIF orientation is applied, as on the stack",
    )
    parser.set_defaults(run=run, stackless=True)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror}") from exc


def run(args: argparse.Namespace, target: StackTarget | None) -> int:
    # Pillow is loaded here, not at `cutout --help`: only this command renders.
    from cutout.renditions.errors import RenditionError
    from cutout.renditions.judge import judge
    from cutout.renditions.presets import rendition_key
    from cutout.renditions.render import open_cutout, render, source_orientation

    out = Output.from_args(args)
    document, source = load(args.presets)
    names = [n.strip() for given in args.preset for n in given.split(",") if n.strip()]
    selection = document.named(names) if names else document.named(list(document.presets))
    if selection.unknown:
        defined = ", ".join(document.presets) or "none"
        raise TargetError(f"no preset {', '.join(selection.unknown)} in {source} (defined: {defined})")
    orientation, source_size = source_orientation(_read(args.original)) if args.original else (None, None)
    try:
        image = open_cutout(_read(args.cutout), orientation=orientation, source_size=source_size)
    except RenditionError as exc:
        raise TargetError(f"{args.cutout}: {exc.message}") from exc
    rows: list[dict[str, Any]] = []
    for preset in selection.presets:
        path = args.out / rendition_key("", preset, args.cutout.name)
        started = time.perf_counter()
        try:
            rendered = render(image, preset)
        except RenditionError as exc:
            rows.append({"preset": preset.name, "status": "failed", "reason": exc.message})
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendered.body)
        rows.append(
            {
                "preset": preset.name,
                "status": "ok",
                "file": str(path),
                "width": rendered.width,
                "height": rendered.height,
                "bytes": len(rendered.body),
                "ms": round((time.perf_counter() - started) * 1000),
            }
        )
    flags = [{"code": f.code, "figure": f.figure, "message": f.message} for f in judge(image)]
    doc = {"cutout": str(args.cutout), "presets_from": source, "renditions": rows, "flags": flags}

    def human(console: Any) -> None:
        console.print(f"presets from {source}", markup=False, soft_wrap=True)
        columns = ("preset", "status", "file", "size", "bytes", "ms")
        console.print(table(None, columns, [_row(r) for r in rows], no_wrap=("file",)))
        for flag in flags:
            console.print(f"flag {flag['code']}: {flag['message']}", markup=False, soft_wrap=True)

    out.emit(doc, human)
    return EXIT_ERROR if any(r["status"] != "ok" for r in rows) else EXIT_OK


def _row(r: dict[str, Any]) -> tuple[Any, ...]:
    if r["status"] != "ok":
        return (r["preset"], "failed", r["reason"], "", "", "")
    return (r["preset"], "ok", r["file"], f"{r['width']}x{r['height']}", f"{r['bytes']:,}", r["ms"])
