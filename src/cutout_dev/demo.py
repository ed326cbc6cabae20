"""``make demo``: the whole pipeline on the local stack, offline, in a few seconds.

Uploads the samples (plus the same bytes again to the same key, which must not create a second Magic Hour job,
and a non-image, which must be rejected), shows progress while the jobs run, prints a table and writes the
cutouts to ``demo-output/``. Exit status 0 only if all of that held.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cutout.models import TERMINAL
from PIL import Image

from cutout_dev.local_stack import LocalStack, LocalStackConfig, Uploaded
from cutout_dev.local_stack.stack import PROJECT_ROOT
from cutout_dev.make_samples import NON_IMAGE, SAMPLES, generate

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


def _latency(job: dict[str, Any]) -> str:
    try:
        start = datetime.fromisoformat(str(job["created_at"]))
        end = datetime.fromisoformat(str(job.get("completed_at") or job["updated_at"]))
    except (KeyError, ValueError):
        return ""
    return f"{(end - start).total_seconds():.1f}s"


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


def run() -> int:
    t0 = time.perf_counter()
    if not all((SAMPLES_DIR / n).exists() for n in [*SAMPLES, NON_IMAGE]):
        generate(SAMPLES_DIR)
    FUNCTION_LOG.parent.mkdir(parents=True, exist_ok=True)
    FUNCTION_LOG.write_text("", encoding="utf-8")
    # With MAGIC_HOUR_API_KEY exported, the demo runs against the real API (4 images = 20 credits);
    # CUTOUT_EMULATOR=1 keeps it offline whatever the environment says.
    real = bool(os.environ.get("MAGIC_HOUR_API_KEY")) and os.environ.get("CUTOUT_EMULATOR") != "1"
    config = LocalStackConfig(
        emulator={"render_seconds": 0.8},
        function_log=FUNCTION_LOG,
        schedule_interval_seconds=0,
        real_magic_hour=real,
    )
    target = "the REAL Magic Hour API (spends credits)" if real else "the Magic Hour emulator"
    print(f"Starting the local stack (moto + {target} + the real handlers) ...", flush=True)
    with LocalStack(config) as stack:
        ep = stack.endpoints
        print(f"  up in {time.perf_counter() - t0:.1f}s: s3://{ep.bucket}/{ep.input_prefix}  (AWS at {ep.aws})")
        print(f"  function logs: {FUNCTION_LOG.relative_to(PROJECT_ROOT)}\n")

        rows: list[Row] = []
        t_upload = time.perf_counter()
        for name in [*SAMPLES, NON_IMAGE]:
            rows.append(Row(name, stack.upload(SAMPLES_DIR / name)))
            print(f"  uploaded {ep.input_prefix}{name}", flush=True)
        first = rows[0]
        duplicate = stack.upload(SAMPLES_DIR / first.name)  # same bytes, same key: same ETag, same job id
        print(f"  uploaded {ep.input_prefix}{first.name} again (same bytes: must not create a second job)\n")

        deadline = time.perf_counter() + (REAL_TIMEOUT_SECONDS if real else TIMEOUT_SECONDS)
        while time.perf_counter() < deadline:
            records = {str(j["job_id"]): j for j in stack.jobs()}
            for row in rows:
                job = records.get(row.upload.job_id)
                status = str(job.get("status")) if job else "uploaded"
                if status != row.status:
                    _print_progress(t_upload, row.name, row.status, status)
                    row.status = status
            if all(r.status in TERMINAL for r in rows) and stack.quiescent():
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - t_upload

        if real:
            # Magic Hour has no list endpoint: the table is the evidence (one record, one project id).
            creates = [j for j in stack.jobs() if j["job_id"] == first.upload.job_id and j.get("project_id")]
        else:
            creates = [c for c in stack.emulator.state.creates if c.name == f"cutout:{first.upload.job_id}"]
        _collect_outputs(stack, rows, records)
        stack_ok = stack.quiescent()

    ok = _report(rows, duplicate, first, len(creates), elapsed, stack_ok)
    print(f"\nDemo finished in {time.perf_counter() - t0:.1f}s (pipeline {elapsed:.1f}s).")
    return 0 if ok else 1


def _collect_outputs(stack: LocalStack, rows: list[Row], records: dict[str, dict[str, Any]]) -> None:
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    OUTPUT_DIR.mkdir(parents=True)
    s3 = stack.client("s3")
    for row in rows:
        job = records.get(row.upload.job_id) or {}
        row.output_key = str(job.get("output_key") or "")
        row.reason = str(job.get("error_code") or "")
        row.credits = str(job.get("credits_charged", "")) if job.get("credits_charged") is not None else ""
        row.latency = _latency(job) if job else ""
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
        (OUTPUT_DIR / (Path(row.name).stem + ".png")).write_bytes(data)


def _report(rows: list[Row], duplicate: Uploaded, first: Row, creates: int, elapsed: float, idle: bool) -> bool:
    headers = ("key", "status", "output key / reason", "credits", "latency", "check")
    table = [
        (r.upload.key, r.status, r.output_key or r.reason or "-", r.credits or "-", r.latency or "-", r.problem or "ok")
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in table:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))

    checks = {
        "every image completed with a transparent PNG": all(not r.problem for r in rows if r.name != NON_IMAGE),
        f"{NON_IMAGE} rejected": all(not r.problem for r in rows if r.name == NON_IMAGE),
        "duplicate upload reused the job (same job id)": duplicate.job_id == first.upload.job_id,
        f"duplicate upload made no second Magic Hour create ({creates} create)": creates == 1,
        "queues drained": idle,
    }
    print()
    for label, passed in checks.items():
        print(f"  [{'PASS' if passed else 'FAIL'}] {label}")
    written = sorted(p.name for p in OUTPUT_DIR.glob("*.png"))
    print(f"\n  cutouts written to {OUTPUT_DIR.relative_to(PROJECT_ROOT)}/: {', '.join(written) or 'none'}")
    return all(checks.values())


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    # Powertools warns (on stderr, not in the function log) when an invocation records no metric.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sys.exit(run())


if __name__ == "__main__":
    main()
