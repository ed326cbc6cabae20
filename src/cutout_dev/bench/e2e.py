"""Part 3: uploads through the local stack — the latency Cutout adds around Magic Hour's render, and throughput.

Load: a closed loop of ``concurrency`` clients (5), each uploading an image and waiting for its cutout before
the next, i.e. at most 5 jobs at Magic Hour at once — the plan-level cap on concurrent renders. With a render
time R, no implementation can exceed ``concurrency / R`` images per second (Little's law): that is the bound.

Latency added by Cutout, per image, from timestamps rather than from the observer's polling:
  (cutout stored - upload started) - (Magic Hour's own create → complete time, from the emulator's project)
split into *before* (upload → Magic Hour create: S3 → EventBridge → ingest queue → batching window → submit)
and *after* (render complete → webhook or poll → completion queue → finalize → S3 write → record complete).
"Stored" is the job's ``completed_at``, written right after the cutout's S3 PUT.

Modes: *webhooks* (the emulator calls the webhook function URL) and *polling only* (no webhooks; the delayed
status check finds the result). They run at the same time, each on its own local stack in its own process: the
run is latency-bound (mostly waiting on renders), so two stacks side by side see the same machine conditions and
the part fits the 5-minute budget (one after the other, 200 uploads at 5 / 4 s take over 4 minutes alone). Poll
settings are the template's production defaults (first check after 4 s, two more 1 s apart, then x1.5 up to
120 s), not the local stack's shortened ones, so the polling figure is what a deployment without webhooks would see.
"""

from __future__ import annotations

import io
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cutout_dev.bench.calls import MINIMUM_CALLS_PER_IMAGE
from cutout_dev.bench.stats import summary

ROOT = Path(__file__).resolve().parents[3]

CACHE = ROOT / "bench" / ".cache"
OBSERVE_INTERVAL = 0.1


def _png(i: int) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (96, 64), (255, 255, 255))
    ImageDraw.Draw(img).ellipse((24, 16, 72, 48), fill=((i * 37) % 256, 40, 200))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _epoch(iso_text: str) -> float:
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


class _Counter:
    """botocore before-call counts on the default session: the functions' clients and the event sources'."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        self.on = False

    def __call__(self, event_name: str, **_: Any) -> None:
        if self.on:
            op = event_name.split(".", 1)[1]
            with self.lock:
                self.calls[op] = self.calls.get(op, 0) + 1

    def take(self) -> dict[str, int]:
        with self.lock:
            out, self.calls = self.calls, {}
        return out


def _stack_config(mode_name: str, render_seconds: float, concurrency: int) -> Any:
    from cutout_dev.local_stack import LocalStackConfig

    return LocalStackConfig(
        webhooks=True,
        emulator={"render_seconds": render_seconds, "queue_seconds": 0.0},
        parameters={
            "MaximumConcurrency": str(concurrency),
            # The closed loop keeps `concurrency` uploads in flight: admission must allow as many Magic Hour
            # projects, or uploads wait for a slot and the figure measures the cap, not the pipeline.
            "MaxJobsInFlight": str(concurrency),
            "PollFirstDelaySeconds": "4",
            "PollMaxDelaySeconds": "120",
            "PollMaxAttempts": "30",
        },
        default_concurrency=concurrency,
        schedule_interval_seconds=0,
        function_log=CACHE / f"e2e-functions-{mode_name}.log",
    )


class _Observer:
    """The closed loop's clients on one stack: each uploads an image, waits for its cutout, records the sample.
    Its own boto3 session: the observer's calls are not Cutout's and are not counted."""

    def __init__(self, stack: Any, concurrency: int) -> None:
        import boto3

        self.stack = stack
        self.concurrency = concurrency
        ep = self.ep = stack.endpoints
        observer = boto3.session.Session()
        self.s3 = observer.client("s3", endpoint_url=ep.aws, region_name=ep.region)
        self.ddb = observer.client("dynamodb", endpoint_url=ep.aws, region_name=ep.region)
        self.bodies = [_png(i) for i in range(16)]
        self.seq = iter(range(10**9))
        self.lock = threading.Lock()
        self.failures: dict[str, int] = {"webhooks": 0, "polling": 0}
        self.errors: list[str] = []

    def _wait_terminal(self, job_id: str) -> dict[str, Any]:
        from cutout.domain.models import TERMINAL

        deadline = time.monotonic() + 120
        item: dict[str, Any] = {}
        while time.monotonic() < deadline:
            item = self.ddb.get_item(TableName=self.ep.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True).get(
                "Item", {}
            )
            if item.get("status", {}).get("S") in TERMINAL:
                break
            time.sleep(OBSERVE_INTERVAL)
        return item

    def one(self, mode: str, i: int) -> dict[str, float] | None:
        """Upload image `i` and wait for it: its sample, or None (counted as a failure) if it did not complete."""
        from cutout.domain.models import job_id_for

        ep = self.ep
        key = f"{ep.input_prefix}bench/{mode}/{i:05d} photo.png"
        t0 = time.time()
        etag = str(self.s3.put_object(Bucket=ep.bucket, Key=key, Body=self.bodies[i % len(self.bodies)])["ETag"])
        job_id = job_id_for(ep.bucket, key, etag.strip('"'))
        item = self._wait_terminal(job_id)
        seen = time.time()
        status = item.get("status", {}).get("S")
        project = self.stack.emulator.project(item.get("project_id", {}).get("S", "")) if item else None
        if status != "complete" or project is None or project.finished_at is None:
            self.fail(mode, f"job {job_id}: status {status}, project {project is not None}")
            return None
        stored = _epoch(item["completed_at"]["S"])
        render = project.finished_at - project.created_at
        return {
            "upload": t0,
            "stored": stored,
            "total_s": stored - t0,
            "render_s": render,
            "added_s": (stored - t0) - render,
            "before_s": project.created_at - t0,
            "after_s": stored - project.finished_at,
            "observer_lag_s": seen - stored,
        }

    def fail(self, mode: str, error: str) -> None:
        with self.lock:
            self.failures[mode] += 1
            self.errors.append(error)

    def block(self, mode: str, uploads: int) -> list[dict[str, float]]:
        """`uploads` images through `concurrency` clients at once; the samples of those that completed."""
        remaining = [uploads]
        samples: list[dict[str, float]] = []

        def client_loop() -> None:
            while True:
                with self.lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                    i = next(self.seq)
                try:
                    sample = self.one(mode, i)
                except Exception as exc:  # one image's failure is a figure, not the end of the run
                    self.fail(mode, f"{type(exc).__name__}: {exc}"[:300])
                    continue
                if sample is not None:
                    with self.lock:
                        samples.append(sample)

        threads = [threading.Thread(target=client_loop, name=f"bench-client-{k}") for k in range(self.concurrency)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return samples


def run_mode(
    mode_name: str, uploads: int, *, render_seconds: float, concurrency: int, log: Any = print
) -> dict[str, Any]:
    """One mode on its own stack, in this process: the raw samples and counts for `_result`."""
    import boto3

    from cutout_dev.local_stack import LocalStack

    CACHE.mkdir(parents=True, exist_ok=True)
    boto3.setup_default_session()
    counter = _Counter()
    assert boto3.DEFAULT_SESSION is not None
    # Before the stack starts, so every client it and its functions create inherits the handler.
    boto3.DEFAULT_SESSION.events.register("before-call", counter)
    # Two blocks, so a slow start (first cold starts, page cache) shows up as a difference between them.
    blocks = [mode_name, mode_name] if uploads >= 20 else [mode_name]
    per_block = max(1, uploads // len(blocks))
    samples: list[dict[str, float]] = []
    spans: list[tuple[int, float]] = []
    calls: dict[str, int] = {}
    invocations: dict[str, list[float]] = {}
    t_start = time.perf_counter()
    with LocalStack(_stack_config(mode_name, render_seconds, concurrency)) as stack:
        observer = _Observer(stack, concurrency)
        for block_no, mode in enumerate(blocks):
            stack.emulator.configure(webhook_url=stack.endpoints.webhook if mode == "webhooks" else "")
            block_t0 = time.time()
            counter.take()
            counter.on = True
            block_samples = observer.block(mode, per_block)
            counter.on = False
            # Let the block's stragglers (late polls of finished jobs, duplicate webhooks) settle before the next.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not stack.quiescent():
                time.sleep(0.2)
            for op, n in counter.take().items():
                calls[op] = calls.get(op, 0) + n
            for inv in [i for i in list(stack.invocations) if i.started >= block_t0]:
                invocations.setdefault(inv.function, []).append(inv.duration_ms)
            samples.extend(block_samples)
            if block_samples:
                span = max(s["stored"] for s in block_samples) - min(s["upload"] for s in block_samples)
                spans.append((len(block_samples), span))
            log(f"  e2e block {block_no + 1}/{len(blocks)} ({mode}): {len(block_samples)} images")
    return {
        "samples": samples,
        "spans": spans,
        "calls": calls,
        "invocations": invocations,
        "failures": observer.failures[mode_name],
        "errors": observer.errors[:10],
        "elapsed": time.perf_counter() - t_start,
    }


def run(
    uploads_per_mode: int, *, render_seconds: float = 4.0, concurrency: int = 5, log: Any = print
) -> dict[str, Any]:
    """Both modes at once, each in a child process with its own stack; merged into one result."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cutout-bench-e2e-") as tmp:
        procs = {}
        for mode in ("webhooks", "polling"):
            out = Path(tmp, f"{mode}.json")
            cmd = [sys.executable, "-m", "cutout_dev.bench.e2e", mode, str(uploads_per_mode), str(render_seconds)]
            cmd += [str(concurrency), str(out)]
            procs[mode] = (subprocess.Popen(cmd, env=dict(os.environ), stderr=subprocess.PIPE, text=True), out)
        raw: dict[str, dict[str, Any]] = {}
        for mode, (proc, out) in procs.items():
            _, err = proc.communicate(timeout=900)
            if proc.returncode != 0 or not out.exists():
                raise RuntimeError(f"e2e {mode} failed ({proc.returncode}): {err[-3000:]}")
            raw[mode] = json.loads(out.read_text())
            for line in err.splitlines():
                if line.startswith("  e2e block"):
                    log(line)
    return _result(
        {m: r["samples"] for m, r in raw.items()},
        {m: [tuple(x) for x in r["spans"]] for m, r in raw.items()},
        {m: r["calls"] for m, r in raw.items()},
        {m: r["invocations"] for m, r in raw.items()},
        {m: r["failures"] for m, r in raw.items()},
        {m: r["errors"] for m, r in raw.items()},
        render_seconds,
        concurrency,
        time.perf_counter() - t0,
        log,
    )


def _child(argv: list[str]) -> None:
    import json
    import logging
    import sys
    import warnings

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    mode, uploads, render, concurrency, out = argv
    result = run_mode(
        mode,
        int(uploads),
        render_seconds=float(render),
        concurrency=int(concurrency),
        log=lambda text: print(text, file=sys.stderr, flush=True),
    )
    Path(out).write_text(json.dumps(result))


def _result(
    samples: dict[str, list[dict[str, float]]],
    spans: dict[str, list[tuple[int, float]]],
    calls: dict[str, dict[str, int]],
    invocations: dict[str, dict[str, list[float]]],
    failures: dict[str, int],
    errors: dict[str, list[str]],
    render_seconds: float,
    concurrency: int,
    elapsed: float,
    log: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "render_seconds": render_seconds,
        "concurrency": concurrency,
        # Recorded so that a reader of the results can tell the loop never waited for a slot (see above).
        "max_jobs_in_flight": concurrency,
        "observer_interval_s": OBSERVE_INTERVAL,
        "wall_seconds": round(elapsed, 1),
        "modes": {},
    }
    for mode, rows in samples.items():
        images = len(rows)
        added_ms = [r["added_s"] * 1000 for r in rows]
        render = summary([r["render_s"] for r in rows])
        total_images = sum(n for n, _ in spans[mode])
        total_span = sum(s for _, s in spans[mode])
        throughput = total_images / total_span if total_span else 0.0
        mean_render = sum(r["render_s"] for r in rows) / images if images else render_seconds
        bound = concurrency / mean_render if mean_render else 0.0
        out["modes"][mode] = {
            "images": images,
            "failures": failures[mode],
            "errors": errors[mode],
            "added_ms": summary(added_ms, 1),
            "added_p95_ms": round(_p(added_ms, 0.95), 1) if added_ms else None,
            "added_before_create_ms": summary([r["before_s"] * 1000 for r in rows], 1),
            "added_after_render_ms": summary([r["after_s"] * 1000 for r in rows], 1),
            "total_ms": summary([r["total_s"] * 1000 for r in rows], 1),
            "render_s": render,
            "added_over_render": round((sum(added_ms) / 1000 / images) / mean_render, 3) if images else None,
            "throughput_per_s": round(throughput, 3),
            "bound_per_s": round(bound, 3),
            "throughput_vs_bound": round(throughput / bound, 3) if bound else None,
            "observer_lag_ms": summary([r["observer_lag_s"] * 1000 for r in rows], 1),
            "aws_calls_per_image": {k: round(v / images, 3) for k, v in sorted(calls[mode].items())} if images else {},
            "minimum_calls_per_image": MINIMUM_CALLS_PER_IMAGE.get(mode, {}),
            "invocations_per_image": {k: round(len(v) / images, 3) for k, v in invocations[mode].items()}
            if images
            else {},
            "invocation_ms": {k: summary(v, 1) for k, v in invocations[mode].items()},
        }
        m = out["modes"][mode]
        if images:
            log(
                f"  e2e {mode:<8} added p50 {m['added_ms']['median']:.0f} ms p95 {m['added_p95_ms']:.0f} ms; "
                f"throughput {m['throughput_per_s']:.2f}/s vs bound {m['bound_per_s']:.2f}/s "
                f"({m['throughput_vs_bound']:.2f})"
            )
    return out


def _p(values: list[float], q: float) -> float:
    from cutout_dev.bench.stats import quantile

    return quantile(values, q)


if __name__ == "__main__":
    import sys

    _child(sys.argv[1:])
