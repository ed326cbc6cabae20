"""Part 6: what an upload that waits for a slot costs — the AWS calls of the waiting and dispatch path, counted.

One local stack with ``MaxJobsInFlight`` 1, webhooks on, no faults, and two phases on it:

* *no wait*: uploads one at a time, each after the previous one finished and the stack went quiet, so every upload
  finds the slot free (its calls still include the slot acquire and release, and the dispatch message its finish
  sends, which finds nobody waiting);
* *burst*: uploads put at once; the first takes the slot and the others are recorded ``waiting`` and started one by
  one as the slot frees: the ``waiting`` write, the recheck snapshot, the dispatch message each finish sends and the
  submit invocation it starts, the ``by-status`` query for the oldest, a slot acquire per attempt.

The functions' AWS calls are counted with botocore's ``before-call`` on the default session, only on threads inside
a function invocation (``cutout_dev.flood.CallCounter``): the harness's own calls and the local event sources'
polling stay out (the cost model prices SQS receives and deletes per message). The periodic admission tick is off:
its cost is per minute (``docs/scale.md``), not per image. Waiting uploads are counted from the submit function's
own log line for them. What one waiting upload adds = (burst calls - burst uploads x no-wait calls per upload) /
uploads that waited; the cost model (``cost.model``) prices both phases the same way, so the difference is what
waiting costs.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cutout_dev.bench.stats import summary

ROOT = Path(__file__).resolve().parents[3]
WAIT_LOG_MESSAGE = "no in-flight slot free; the job waits"  # waiting_line.WaitingLine._wait's log line
PHASES = ("no_wait", "burst")


def _png(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 32), ((i * 53) % 256, 90, 160)).save(buf, format="PNG")
    return buf.getvalue()


def _count_waits(log_path: Path) -> int:
    sys.stdout.flush()  # the local stack's stdout stand-in writes the functions' lines to `log_path`
    waits = 0
    with log_path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if WAIT_LOG_MESSAGE in line:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                waits += isinstance(doc, dict) and doc.get("message") == WAIT_LOG_MESSAGE
    return waits


def _wait_terminal(stack: Any, job_ids: set[str], deadline: float) -> None:
    from cutout.domain.models import TERMINAL

    while time.monotonic() < deadline:
        jobs = {str(j["job_id"]): j for j in stack.jobs()}
        if all(jobs.get(i, {}).get("status") in TERMINAL for i in job_ids):
            settle = time.monotonic() + 30
            # The last finish's dispatch message (nobody waiting) belongs to the phase too.
            while time.monotonic() < settle and not stack.quiescent():
                time.sleep(0.2)
            return
        time.sleep(0.2)
    raise TimeoutError(f"{len(job_ids)} uploads not all terminal in time (dispatch stalled?)")


def measure(no_wait: int, burst: int, render_seconds: float, log_path: Path) -> dict[str, Any]:
    """Both phases on one stack in this process; raw counts per phase."""
    import boto3

    from cutout_dev.flood import CallCounter
    from cutout_dev.local_stack import LocalStack, LocalStackConfig

    boto3.setup_default_session()
    counter = CallCounter()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call", counter)  # before the stack makes its clients
    log_path.unlink(missing_ok=True)
    config = LocalStackConfig(
        webhooks=True,
        emulator={"render_seconds": render_seconds, "queue_seconds": 0.0},
        parameters={"MaxJobsInFlight": "1"},
        schedule_interval_seconds=0,
        function_log=log_path,
    )
    phases: dict[str, dict[str, Any]] = {}
    with LocalStack(config) as stack:
        for function in stack.functions.values():
            counter.watch(function)
        # One upload first, not counted: cold starts fetch the webhook secret once per execution environment, a
        # cost per environment, not per image, which would otherwise land on whichever phase came first.
        warm = stack.upload(_png(0), "bench/waiting/warm-up.png")
        _wait_terminal(stack, {warm.job_id}, time.monotonic() + 120)
        seq = 1
        for phase, n in (("no_wait", no_wait), ("burst", burst)):
            counter.calls.clear()
            counter.invocations.clear()
            counter.durations_ms.clear()
            waits_before = _count_waits(log_path)
            ids: set[str] = set()
            deadline = time.monotonic() + 60 + n * (render_seconds + 5)
            for _ in range(n):
                up = stack.upload(_png(seq), f"bench/waiting/{phase}/{seq:04d}.png")
                seq += 1
                ids.add(up.job_id)
                if phase == "no_wait":
                    _wait_terminal(stack, {up.job_id}, deadline)
            _wait_terminal(stack, ids, deadline)
            statuses = Counter(str(j.get("status")) for j in stack.jobs() if j["job_id"] in ids)
            phases[phase] = {
                "uploads": n,
                "statuses": dict(statuses),
                "waited": _count_waits(log_path) - waits_before,
                "calls": dict(counter.calls),
                "invocations": dict(counter.invocations),
                "durations_ms": {k: list(v) for k, v in counter.durations_ms.items()},
            }
    boto3.DEFAULT_SESSION.events.unregister("before-call", counter)
    return phases


def _per(counts: dict[str, float], n: float) -> dict[str, float]:
    return {k: round(v / n, 3) for k, v in sorted(counts.items()) if v} if n else {}


def result(raw: dict[str, dict[str, Any]], render_seconds: float) -> dict[str, Any]:
    """Per-image calls for each phase, what one waiting upload adds, and both priced by the cost model."""
    from cutout_dev.bench import cost

    base, burst = raw["no_wait"], raw["burst"]
    n_base, n_burst, waited = base["uploads"], burst["uploads"], burst["waited"]
    if not waited or not n_base or base["waited"]:
        raise RuntimeError(f"nothing to compare: {n_base} uploads without waiting ({base['waited']} waited), {waited}")
    base_calls = _per(base["calls"], n_base)
    base_inv = _per(base["invocations"], n_base)
    # What a waiting upload makes: a no-wait upload's calls plus its share of what the burst made beyond that.
    extra_calls = {
        op: round((burst["calls"].get(op, 0) - n_burst * base_calls.get(op, 0.0)) / waited, 3)
        for op in sorted(set(burst["calls"]) | set(base_calls))
    }
    extra_inv = {
        fn: round((burst["invocations"].get(fn, 0) - n_burst * base_inv.get(fn, 0.0)) / waited, 3)
        for fn in sorted(set(burst["invocations"]) | set(base_inv))
    }
    waiting_calls = {k: round(base_calls.get(k, 0.0) + v, 3) for k, v in extra_calls.items()}
    waiting_inv = {k: round(base_inv.get(k, 0.0) + v, 3) for k, v in extra_inv.items()}
    durations: dict[str, list[float]] = {}
    for phase in (base, burst):
        for fn, values in phase["durations_ms"].items():
            durations.setdefault(fn, []).extend(values)
    invocation_ms = {fn: summary(v, 1) for fn, v in durations.items()}

    def priced(calls: dict[str, float], invocations: dict[str, float]) -> dict[str, Any]:
        mode = {
            "images": 1,
            "aws_calls_per_image": {k: max(v, 0.0) for k, v in calls.items()},
            "invocations_per_image": {k: max(v, 0.0) for k, v in invocations.items()},
            "invocation_ms": invocation_ms,
        }
        return cost.model({"modes": {"webhooks": mode}}, None)

    no_wait_cost = priced(base_calls, base_inv)
    waiting_cost = priced(waiting_calls, waiting_inv)
    by_line = {
        k: round(waiting_cost["usd_per_1000_images"][k] - v, 4) for k, v in no_wait_cost["usd_per_1000_images"].items()
    }
    return {
        "max_jobs_in_flight": 1,
        "render_seconds": render_seconds,
        "uploads": {"no_wait": n_base, "burst": n_burst, "waited": waited},
        "statuses": {"no_wait": base["statuses"], "burst": burst["statuses"]},
        "aws_calls_per_image": {"no_wait": base_calls, "waiting": waiting_calls, "added_by_waiting": extra_calls},
        "aws_calls_total_per_image": {
            "no_wait": round(sum(base_calls.values()), 2),
            "waiting": round(sum(waiting_calls.values()), 2),
        },
        "invocations_per_image": {"no_wait": base_inv, "waiting": waiting_inv, "added_by_waiting": extra_inv},
        "invocation_ms": invocation_ms,
        "usd_per_1000_images": {
            "no_wait": no_wait_cost["aws_total_usd_per_1000_images"],
            "waiting": waiting_cost["aws_total_usd_per_1000_images"],
        },
        "waiting_usd_per_1000_images": round(
            waiting_cost["aws_total_usd_per_1000_images"] - no_wait_cost["aws_total_usd_per_1000_images"], 4
        ),
        "waiting_usd_per_1000_images_by_line": by_line,
    }


def run(no_wait: int, burst: int, *, render_seconds: float, log: Any = print) -> dict[str, Any]:
    """In a child process (the local stack swaps stdout, the environment and imports: keep that out of the bench)."""
    with tempfile.TemporaryDirectory(prefix="cutout-bench-waiting-") as tmp:
        out = Path(tmp, "waiting.json")
        cmd = [
            sys.executable,
            "-m",
            "cutout_dev.bench.waiting",
            str(no_wait),
            str(burst),
            str(render_seconds),
            str(out),
        ]
        proc = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"waiting run failed ({proc.returncode}): {proc.stderr[-3000:]}")
        raw = json.loads(out.read_text())
    res = result(raw, render_seconds)
    totals = res["aws_calls_total_per_image"]
    log(
        f"  waiting: {res['uploads']['waited']} of {burst} burst uploads waited; AWS calls/image {totals['no_wait']:g} "
        f"without waiting, {totals['waiting']:g} for one that waited; waiting costs "
        f"${res['waiting_usd_per_1000_images']:.4f} per 1,000 images"
    )
    return res


def _child(argv: list[str]) -> None:
    import logging
    import warnings

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    no_wait, burst, render, out = argv
    log_path = Path(out).with_suffix(".functions.log")
    raw = measure(int(no_wait), int(burst), float(render), log_path)
    Path(out).write_text(json.dumps(raw))


if __name__ == "__main__":
    _child(sys.argv[1:])
