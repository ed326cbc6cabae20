"""``python -m cutout_dev.bench [--smoke] [--parts 1,2,3,4,6] [--out bench/results.json]`` (what ``make bench`` runs).

Only the cold start, for some handlers: ``--parts 1 --cold-functions submit,poll --out /tmp/cold.json``. Only what
an upload that waits for a slot costs: ``--parts 6 --out /tmp/waiting.json``. Only the renditions (a 12-megapixel
cutout through every bench preset): ``--parts 7 --out /tmp/renditions.json``.

``--smoke`` (or ``CUTOUT_BENCH_SMOKE=1``) runs every part tiny, to prove the bench still works (``make test``);
its figures mean nothing. A smoke run writes ``bench/results-smoke.json`` unless ``--out`` says otherwise, so it
never overwrites the figures docs/benchmarks.md and the README quote (``make docs-figures`` rewrites them from
``bench/results.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutout_dev import results_schema
from cutout_dev.bench import coldstart, cost, e2e, footprint, per_record, renditions, waiting
from cutout_dev.bench.report import readme_fragment, render
from cutout_dev.results_schema import stamped

ROOT = Path(__file__).resolve().parents[3]


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "nproc": os.cpu_count(),
        "arch": platform.machine(),
        "cpu": cpu,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": commit,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", default=os.environ.get("CUTOUT_BENCH_SMOKE") == "1")
    parser.add_argument(
        "--parts", default="1,2,3,4,6,7", help="comma-separated parts to run (5, the cost model, always)"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cold-runs", type=int, default=None)
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--e2e-uploads", type=int, default=None, help="uploads in total, split over the two modes")
    parser.add_argument("--render-seconds", type=float, default=None)
    parser.add_argument("--cold-functions", default=None, help="comma-separated handlers for part 1 (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    smoke = bool(args.smoke)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    cold_runs = args.cold_runs or (3 if smoke else 15)
    records = args.records or (20 if smoke else 500)
    uploads = args.e2e_uploads or (6 if smoke else 200)
    render_seconds = args.render_seconds or (1.0 if smoke else 4.0)
    # Part 6: uploads one at a time, then a burst against one slot. Short renders: the calls do not depend on the
    # render's length (the first status check is scheduled from the create either way), only the run time does.
    wait_no_wait, wait_burst, wait_render = (3, 5, 0.3) if smoke else (10, 20, 0.5)
    out = args.out or ROOT / "bench" / ("results-smoke.json" if smoke else "results.json")

    # The servers' access logs and Powertools' empty-metrics warnings are the harness's noise, not results.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    def log(text: str) -> None:
        print(text, flush=True)

    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "smoke": smoke,
        "settings": {
            "cold_runs": cold_runs,
            "records": records,
            "e2e_uploads": uploads,
            "render_seconds": render_seconds,
            "concurrency": 5,
            "waiting": {"no_wait_uploads": wait_no_wait, "burst_uploads": wait_burst, "render_seconds": wait_render},
        },
    }
    log(f"cutout bench{' (smoke)' if smoke else ''}: parts {','.join(sorted(parts))}")
    if "1" in parts:
        log("[1] cold start")
        names = tuple(f.strip() for f in (args.cold_functions or "").split(",") if f.strip())
        functions = names or (("submit",) if smoke else None)
        results["cold_start"] = coldstart.run(cold_runs, functions, log=log)
    if "2" in parts:
        log("[2] submit cost per record")
        results["per_record"] = per_record.run(records, log=log)
    if "3" in parts:
        log("[3] end to end through the local stack")
        results["e2e"] = e2e.run(max(1, uploads // 2), render_seconds=render_seconds, concurrency=5, log=log)
    if "4" in parts:
        log("[4] footprint")
        results["footprint"] = footprint.run(allow_network=not smoke, log=log)
    if "6" in parts:
        log("[6] an upload that waits for a slot: AWS calls and cost")
        results["waiting"] = waiting.run(wait_no_wait, wait_burst, render_seconds=wait_render, log=log)
    if "7" in parts:
        log("[7] renditions: render all presets against decode + encode, memory, cold start")
        results["renditions"] = renditions.run(smoke=smoke, log=log)
    results["cost"] = cost.model(results.get("e2e"), results.get("per_record"))
    results["elapsed_seconds"] = round(time.perf_counter() - started, 1)

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stamped(results, results_schema.BENCH), indent=2) + "\n")
    print()
    print(render(results))
    print()
    print(readme_fragment(results))
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} in {results['elapsed_seconds']} s")
    print("`make docs-figures` puts its figures in docs/benchmarks.md and the README")
    return 0


if __name__ == "__main__":
    sys.exit(main())
