"""``make demo``: the whole pipeline on the local stack, offline, in a few seconds.

Sets the presets of ``samples/presets.json`` on the stack, uploads the samples (plus the same bytes again to the
same key, which must not create a second Magic Hour job, and a non-image, which must be rejected), shows progress
while the jobs and their renditions run, prints a table and writes the cutouts, their renditions and a before/after
page (``index.html``, see ``cutout_dev.gallery``) to ``demo-output/``. Exit status 0 only if all of that held.

Magic Hour is the emulator, whatever the environment holds: an exported ``MAGIC_HOUR_API_KEY`` changes nothing.
``--real-magic-hour`` calls the real API after a confirmation naming the credits (``--yes`` to give it up front).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutout.domain.models import TERMINAL
from cutout.renditions.presets import PresetDocument
from PIL import Image

from cutout_dev import demo_renditions as renditions
from cutout_dev import gallery
from cutout_dev.local_stack import LocalStack, LocalStackConfig, Uploaded
from cutout_dev.local_stack.stack import PROJECT_ROOT
from cutout_dev.make_samples import NON_IMAGE, SAMPLES, generate
from cutout_dev.real_api import RealApiRefused, ask_for_real_api, spend_sentence

SAMPLES_DIR = PROJECT_ROOT / "samples"
OUTPUT_DIR = PROJECT_ROOT / "demo-output"
FUNCTION_LOG = PROJECT_ROOT / ".local-stack" / "demo-functions.log"
TIMEOUT_SECONDS = 45.0
REAL_TIMEOUT_SECONDS = 300.0  # real renders: median 4 s, but queueing at Magic Hour varies


@dataclass
class Row:
    name: str
    upload: Uploaded
    status: str = "uploaded"
    reason: str = ""
    output_key: str = ""
    credits: str = ""
    latency: str = ""
    problem: str = ""
    job: dict[str, Any] = field(default_factory=dict)
    renditions: str = ""  # the presets picked for it
    rendition_problem: str = ""


def _has_alpha_cutout(data: bytes) -> str:
    """'' if ``data`` is a PNG with an alpha channel that actually removes something; else the reason."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:
        return f"unreadable output ({exc})"
    if img.format != "PNG":
        return f"output is {img.format}, not PNG"
    if img.mode not in ("RGBA", "LA"):
        return f"output mode {img.mode} has no alpha"
    extrema = img.getchannel("A").getextrema()
    low = extrema[0] if isinstance(extrema, tuple) else extrema
    return "" if isinstance(low, (int, float)) and low < 255 else "alpha channel is fully opaque"


def _print_progress(t0: float, name: str, old: str, new: str) -> None:
    print(f"  [{time.perf_counter() - t0:5.1f}s] {name:<22} {old:>10} -> {new}", flush=True)


def run(*, real: bool = False, assume_yes: bool = False, output_dir: Path = OUTPUT_DIR) -> int:
    t0 = time.perf_counter()
    if real:
        # Asked for explicitly; still confirmed, naming what it may spend (one create per sample image), and
        # checked reachable before anything starts.
        try:
            ask_for_real_api(len(SAMPLES), assume_yes=assume_yes)
        except RealApiRefused as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
    if not all((SAMPLES_DIR / n).exists() for n in [*SAMPLES, NON_IMAGE]):
        generate(SAMPLES_DIR)
    FUNCTION_LOG.parent.mkdir(parents=True, exist_ok=True)
    FUNCTION_LOG.write_text("", encoding="utf-8")
    config = LocalStackConfig(
        emulator={"render_seconds": 0.8},
        function_log=FUNCTION_LOG,
        schedule_interval_seconds=0,
        real_magic_hour=real,
        # A message a function gives back (a transient error under load) comes back after 5 s instead of the
        # template's 180 s, so it is retried and finished inside the demo's window rather than failing "queues
        # drained". Still above the batching window plus a batch's processing time, as AWS requires.
        visibility_timeout_seconds=5,
    )
    target = "the REAL Magic Hour API (spends credits)" if real else "the Magic Hour emulator"
    print(f"Starting the local stack (moto + {target} + the real handlers) ...", flush=True)
    if not real and os.environ.get("MAGIC_HOUR_API_KEY"):
        print("  (MAGIC_HOUR_API_KEY is set and not used: --real-magic-hour asks for the paid API)", flush=True)
    with LocalStack(config) as stack:
        ep = stack.endpoints
        print(f"  up in {time.perf_counter() - t0:.1f}s: s3://{ep.bucket}/{ep.input_prefix}  (AWS at {ep.aws})")
        print(f"  function logs: {FUNCTION_LOG.relative_to(PROJECT_ROOT)}")
        document = renditions.set_presets(stack)
        print(
            f"  presets set: {_shown(renditions.PRESETS_FILE)} ({', '.join(document.presets)}), as "
            "`cutout presets set` does\n"
        )

        rows: list[Row] = []
        t_upload = time.perf_counter()
        for name in [*SAMPLES, NON_IMAGE]:
            rows.append(Row(name, stack.upload(SAMPLES_DIR / name)))
            print(f"  uploaded {ep.input_prefix}{name}", flush=True)
        first = rows[0]
        duplicate = stack.upload(SAMPLES_DIR / first.name)  # same bytes, same key: same ETag, same job id
        print(f"  uploaded {ep.input_prefix}{first.name} again (same bytes: must not create a second job)\n")

        deadline = time.perf_counter() + (REAL_TIMEOUT_SECONDS if real else TIMEOUT_SECONDS)
        records = _wait_for_the_end(stack, rows, document, deadline, t_upload)
        elapsed = time.perf_counter() - t_upload

        if real:
            # Magic Hour has no list endpoint: the table is the evidence (one record, one project id).
            creates = [j for j in stack.jobs() if j["job_id"] == first.upload.job_id and j.get("project_id")]
        else:
            creates = [c for c in stack.emulator.state.creates if c.name == f"cutout:{first.upload.job_id}"]
        _collect_outputs(stack, rows, records, output_dir)
        _check_renditions(stack, rows, document, output_dir)
        all_creates = len(stack.emulator.state.creates) if not real else None
        still_moving = stack.still_moving()
        iam = stack.iam_report()
        mode = "the real Magic Hour API" if real else "the Magic Hour emulator"
        page = gallery.write_page(
            output_dir,
            [gallery.card_for_job(stack.client("s3"), r.job) if r.job else _unrecorded(r) for r in rows],
            title="Cutout demo: before and after",
            subtitle=f"make demo: {len(rows)} objects uploaded to the local stack (one of them twice, paid once) "
            f"and {mode}. Each cutout sits on a checkerboard: where it shows, the background was removed. Below "
            f"it, the renditions its presets made from it ({', '.join(document.presets)}), for no extra credit.",
            note="" if real else gallery.EMULATOR_NOTE,
        )

    ok = _report(rows, duplicate, first, len(creates), elapsed, still_moving, output_dir, iam, all_creates)
    print(f"  before/after page: {_shown(page)}  (open it in a browser)")
    print(f"\nDemo finished in {time.perf_counter() - t0:.1f}s (pipeline {elapsed:.1f}s).")
    return 0 if ok else 1


def _wait_for_the_end(
    stack: LocalStack, rows: list[Row], document: PresetDocument, deadline: float, t_upload: float
) -> dict[str, dict[str, Any]]:
    """Until every upload is terminal, every completed one has its renditions and nothing moves (or the
    deadline): the job records as they were last read."""
    records: dict[str, dict[str, Any]] = {}
    while time.perf_counter() < deadline:
        records = {str(j["job_id"]): j for j in stack.jobs()}
        for row in rows:
            job = records.get(row.upload.job_id)
            status = str(job.get("status")) if job else "uploaded"
            if status != row.status:
                _print_progress(t_upload, row.name, row.status, status)
                row.status = status
        # Renditions follow each completion (its event, then the renditions queue): wait for them too.
        complete = [records[r.upload.job_id] for r in rows if r.status == "complete"]
        prefix = stack.endpoints.input_prefix
        rendered = all(renditions.ready(j, renditions.expected(document, j, prefix)) for j in complete)
        if all(r.status in TERMINAL for r in rows) and rendered and stack.quiescent():
            break
        time.sleep(0.2)
    return records


def _unrecorded(row: Row) -> gallery.Card:
    return gallery.Card(row.upload.key, row.status, None, None, reason=row.problem or "no job record")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _collect_outputs(stack: LocalStack, rows: list[Row], records: dict[str, dict[str, Any]], output_dir: Path) -> None:
    shutil.rmtree(output_dir, ignore_errors=True)
    output_dir.mkdir(parents=True)
    s3 = stack.client("s3")
    for row in rows:
        job = records.get(row.upload.job_id) or {}
        row.job = job
        row.output_key = str(job.get("output_key") or "")
        row.reason = str(job.get("error_code") or "")
        row.credits = str(job.get("credits_charged", "")) if job.get("credits_charged") is not None else ""
        row.latency = gallery.latency(job) if job else ""
        if row.name == NON_IMAGE:
            if row.status != "rejected":
                row.problem = f"expected rejected, got {row.status}"
            continue
        if row.status != "complete" or not row.output_key:
            row.problem = f"expected complete, got {row.status} {job.get('error_code', '')}".rstrip()
            continue
        bucket = str(job.get("output_bucket") or stack.endpoints.output_bucket)
        data = s3.get_object(Bucket=bucket, Key=row.output_key)["Body"].read()
        row.problem = _has_alpha_cutout(data)
        (output_dir / (Path(row.name).stem + ".png")).write_bytes(data)


def _check_renditions(stack: LocalStack, rows: list[Row], document: PresetDocument, output_dir: Path) -> None:
    """Each completed sample's renditions, read back and checked against their presets (``renditions/`` keeps
    a copy of each)."""
    s3 = stack.client("s3")
    for row in rows:
        if row.status != "complete" or row.problem:
            continue
        presets = renditions.expected(document, row.job, stack.endpoints.input_prefix)
        bucket = str(row.job.get("output_bucket") or stack.endpoints.output_bucket)
        row.renditions = ", ".join(p.name for p in presets)
        row.rendition_problem = renditions.check(
            s3, row.job, presets, bucket, output_dir / "renditions", Path(row.name).stem
        )


def _report(
    rows: list[Row],
    duplicate: Uploaded,
    first: Row,
    creates: int,
    elapsed: float,
    still_moving: list[str],
    output_dir: Path,
    iam: dict[str, Any],
    all_creates: int | None = None,
) -> bool:
    headers = ("key", "status", "output key / reason", "credits", "latency", "check", "renditions")
    table = [
        (
            r.upload.key,
            r.status,
            r.output_key or r.reason or "-",
            r.credits or "-",
            r.latency or "-",
            r.problem or "ok",
            r.rendition_problem or r.renditions or "-",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in table:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))

    images = sum(1 for r in rows if r.name != NON_IMAGE)
    checks = {
        "every image completed with a transparent PNG": all(not r.problem for r in rows if r.name != NON_IMAGE),
        f"{NON_IMAGE} rejected": all(not r.problem for r in rows if r.name == NON_IMAGE),
        "duplicate upload reused the job (same job id)": duplicate.job_id == first.upload.job_id,
        f"duplicate upload made no second Magic Hour create ({creates} create)": creates == 1,
        "every completed sample has its renditions, each as its preset says": all(
            r.renditions and not r.rendition_problem for r in rows if r.status == "complete"
        ),
        "queues drained": not still_moving,
        _iam_label(iam): not any(iam["refused"].values()),
    }
    if all_creates is not None:
        label = f"renditions made with no Magic Hour call ({all_creates} creates for {images} images)"
        checks[label] = all_creates == images
    print()
    for label, passed in checks.items():
        print(f"  [{'PASS' if passed else 'FAIL'}] {label}")
    for phrase in still_moving:
        print(f"         still moving: {phrase} (function logs: {_shown(FUNCTION_LOG)})")
    written = sorted(p.name for p in output_dir.glob("*.png"))
    print(f"\n  cutouts written to {_shown(output_dir)}/: {', '.join(written) or 'none'}")
    made = sorted(p.name for p in (output_dir / "renditions").glob("*") if p.is_dir())
    print(f"  renditions written to {_shown(output_dir / 'renditions')}/: {', '.join(made) or 'none'}")
    return all(checks.values())


def _iam_label(iam: dict[str, Any]) -> str:
    """Every AWS call each function made was checked against its own role (local_stack/iam), as IAM would."""
    checked = ", ".join(f"{fn.removesuffix('Function').lower()} {n}" for fn, n in sorted(iam["checked"].items()))
    refused = sum(iam["refused"].values())
    return f"every AWS call allowed by its function's role ({checked}; {refused} refused)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--real-magic-hour",
        action="store_true",
        help=f"call the real Magic Hour API with MAGIC_HOUR_API_KEY (spends {spend_sentence(len(SAMPLES))})",
    )
    parser.add_argument("--yes", action="store_true", help="confirm the spend without asking (non-interactive)")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR, help="where cutouts and the page go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    # Powertools warns (on stderr, not in the function log) when an invocation records no metric.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sys.exit(run(real=args.real_magic_hour, assume_yes=args.yes, output_dir=args.output_dir))


if __name__ == "__main__":
    main()
