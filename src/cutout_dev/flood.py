"""Flood: thousands of distinct uploads dropped into the local stack at once, against a Magic Hour plan limit.

    python -m cutout_dev.flood                       # make flood: 2,000 uploads, both plan behaviours, faults on
    python -m cutout_dev.flood --uploads 300 --mode reject --no-faults

What a shop dropping a catalogue into the bucket looks like: every object is PUT in one burst (parallel PutObject,
small distinct images), then the pipeline has to work the backlog off at the plan's pace. The emulator models the
plan: at most ``--limit`` projects render at once, and beyond it Magic Hour either *queues* the excess (status
``queued``) or *rejects* it (429). Each behaviour gets its own fresh local stack, in turn.

The fault mix is the soak's (``cutout_dev.soak.SoakConfig``: Magic Hour 5xx/429/resets, render errors, cancels,
dropped and duplicated webhooks, expired download URLs, S3 events delivered twice, workers killed between create
and DynamoDB update) without never-completing projects (``FLOOD_FAULTS`` says why); the harness's pipeline faults
are wired in by the soak's own ``_inject``, and the reconciliation is the soak's ``reconcile``. On top of the
soak's checks the flood measures what a backlog stresses:

* the highest number of projects open at Magic Hour at once (created, not yet finished — a project that never
  finishes counts until Cutout gave up on it) against ``MaxJobsInFlight``;
* throughput against the bound ``min(MaxJobsInFlight, limit) / render time`` (Little's law: no implementation can
  finish more), over the *backlog window* — first finish to last create: uploads were still waiting, so the plan
  should have been kept full (before the first finish every slot is on its first render and nothing can finish);
  the drain after the last create is reported but not judged (at most one render plus the slowest straggler);
* receives per message: the local SQS poller records each record's ``ApproximateReceiveCount``; a waiting upload
  must not burn receives towards the DLQ (max <= ``maxReceiveCount`` - 1);
* DLQ depths *before* any redrive (the flood does not redrive: a dead-lettered upload is a failure here);
* the latency Cutout added for the last 100 uploads to finish: (S3 upload → job record) + (Magic Hour finished →
  cutout stored), i.e. the total minus the wait for a plan slot and minus Magic Hour's own render;
* the AWS calls per upload (botocore ``before-call`` on the default session, as the bench counts them), for
  ``docs/scale.md``.

Exit status 0 only when every check passes in every mode run. Results: ``bench/flood-results.json``.

Choice of the default limit and render time (measured on the shared 2-core machine this was written on):

* what the machine sustains: the functions and the emulator share one Python process (one core), moto runs in two
  processes of its own (``MotoServer(own_process=True)``: DynamoDB, and the rest). With moto a thread of the same
  process (before) the whole stack had one core: ~6-7 uploads/s with the soak's faults (400 uploads, plan limit 50,
  0.2 s renders), 2,000 uploads took ~8 minutes just to be recorded, and 800 uploads at 25 x 10 s reached 0.80 of
  the bound; in processes of their own, 800 are recorded in ~40 s and reach 0.91 (CPU: functions ~40 %, DynamoDB
  ~70 %, the other services ~40 % of a core). The plan's bound has to sit well below that: 2.5 uploads/s.
* what one slot's cycle costs besides the render (the "slot hand-off" line: from one project's finish at Magic
  Hour to the next create on that slot). Without faults ~0.25 s on a quiet machine (no faults, 200 uploads, limit
  10 x 4 s renders: 0.945 of the bound). The soak's faults add per-cycle costs that do not shrink with the render:
  a dropped webhook (20 %) leaves the slot held until the next status check (~1.9 s), a create of unknown outcome
  that never happened (~4 %) holds it for UnknownOutcomeHoldSeconds, a cancel has no webhook at all. Measured at
  limit 10 x 4 s renders (250 uploads, faults, 10 s bound): hand-off mean 1.17 s — 0.33 of it unknown outcomes,
  0.37 dropped webhooks, 0.30 the rest — so 0.78 of the bound, and 0.67-0.71 on a loaded machine.
* hence a large plan with long renders at 2.5 uploads/s, so the fixed costs of a cycle weigh little against the
  render. At limit 25 x 10 s, 2,000 uploads reached 0.878 (queue) and 0.872 (reject) of the bound with moto in
  its own processes: slot hand-off mean 1.6 s, of which the fault mix alone costs ~0.75 s a cycle (a create of
  unknown outcome that never happened, ~7 % of creates, holds its slot ~6.5 s; a dropped webhook, 20 %, ~1.7 s)
  — 10 / (10 + 1.6) is the ceiling, whatever the pipeline. At limit 50 x 20 s (the default) the same seconds are
  half the share: 800 uploads, reject, 0.967 of the bound, the machine at ~95 % of its 2 cores' 200 %.
  2,000 uploads take ~800 s a mode at the bound, ~35 minutes for `make flood`. `--limit 25 --render-seconds 10`
  and `--limit 10 --render-seconds 4` (Magic Hour's p50) run the variants where the fault tax weighs more.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import logging
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cutout.domain.models import TERMINAL

from cutout_dev.bench.stats import quantile, summary
from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.local_stack.cfn_yaml import load_template
from cutout_dev.local_stack.stack import PROJECT_ROOT
from cutout_dev.slot_accounting import slot_repairs
from cutout_dev.soak import (
    _NAMES,
    INGEST_QUEUE,
    Injected,
    SoakConfig,
    UploadRecord,
    _dlq_contents,
    _image,
    _inject,
    _run_sweeper,
    _wait_quiet,
    reconcile,
)

log = logging.getLogger(__name__)

DEFAULT_RESULTS = PROJECT_ROOT / "bench" / "flood-results.json"
MODES = ("queue", "reject")
LATENCY_TAIL = 100  # "the added latency percentiles of the last 100"
# The emulator's plan settings (EmulatorConfig fields, added with the plan model).
PLAN_LIMIT_FIELD = "plan_concurrency"
PLAN_MODE_FIELD = "plan_mode"
# The soak's fault mix with one change: no never-completing projects. The emulator's plan keeps a stuck project's
# slot for good (as a real plan would), so 1 % of 2,000 uploads (~20 stuck projects) would take every slot of a
# plan of 5 within the first minutes and nothing could render again: that is Magic Hour failing, not a flood, and
# the soak already covers never-completing projects (the poll bound and the sweeper) without a plan limit.
FLOOD_FAULTS: dict[str, Any] = {"never_complete_rate": 0.0}


# ---------------------------------------------------------------------------------------------------------
@dataclass
class FloodConfig:
    uploads: int = 2000
    modes: tuple[str, ...] = MODES
    # Magic Hour's plan limit (the emulator's), and the template's MaxJobsInFlight (None = the same number: a
    # correctly configured deployment).
    limit: int = 50
    max_jobs_in_flight: int | None = None
    render_seconds: float = 20.0
    # The template's UnknownOutcomeHoldSeconds (None = its default, as deployed).
    unknown_outcome_hold_seconds: int | None = None
    seed: int = 20251130
    faults: bool = True
    # Parallel PutObject calls for the burst (moto's server is threaded; more than this only queues on 2 cores).
    upload_threads: int = 16
    # None = derived from the bound: twice the plan's time for the whole flood, plus the poll bound and slack.
    timeout_seconds: float | None = None
    # Poll schedule and bounds: as the soak's (short, so a dropped webhook is noticed within seconds).
    poll_first_delay_seconds: int = 2
    poll_max_delay_seconds: int = 3
    poll_max_wait_seconds: int = 40
    # The submit lease as the template means it, longer than the function's timeout (30 s): a shorter one can call a
    # live worker dead, and, with every reconciling function using it (soak.LEASE_READERS), frees a killed worker's
    # slot while its project still renders (lease + UnknownOutcomeHoldSeconds must outlast a render: at 10 s with
    # 20 s renders the 2,000-upload flood saw 52 projects for 50 slots). The ingest visibility timeout is longer
    # still, so a killed worker's batch comes back to a stale claim (and, as on AWS, >= the function timeout).
    ingest_visibility_seconds: int = 35
    submit_lease_seconds: int = 31
    visibility_seconds: int = 4
    concurrency: str = "4"  # the template's MaximumConcurrency (per SQS event source)
    sweeper_interval_seconds: float = 15.0  # the template's rate(15 minutes), scaled to the run
    # How often the harness scans the jobs table while it waits (a projected scan, job id and status): each one
    # costs moto's DynamoDB, the pipeline's busiest process, a pass over thousands of records.
    scan_interval_seconds: float = 10.0
    # Magic Hour / pipeline fault rates (the soak's mix when faults are on); overrides by SoakConfig field name.
    fault_overrides: dict[str, Any] = field(default_factory=lambda: dict(FLOOD_FAULTS))
    results_path: Path | None = DEFAULT_RESULTS
    function_log: Path | None = Path(tempfile.gettempdir()) / "cutout-flood-functions.log"
    progress: bool = True
    # Fraction of the bound the backlog-window throughput must reach.
    throughput_floor: float = 0.9

    @property
    def in_flight(self) -> int:
        return self.max_jobs_in_flight if self.max_jobs_in_flight is not None else self.limit

    @property
    def bound_per_second(self) -> float:
        return min(self.in_flight, self.limit) / self.render_seconds

    def timeout(self) -> float:
        if self.timeout_seconds is not None:
            return self.timeout_seconds
        return 2 * self.uploads / self.bound_per_second + self.poll_max_wait_seconds + 180

    def soak(self) -> SoakConfig:
        """The soak's settings for one flood run: its fault mix (or none), this flood's timings."""
        base = SoakConfig(
            uploads=self.uploads,
            seed=self.seed,
            render_seconds=self.render_seconds,
            ingest_visibility_seconds=self.ingest_visibility_seconds,
            submit_lease_seconds=self.submit_lease_seconds,
            visibility_seconds=self.visibility_seconds,
            poll_first_delay_seconds=self.poll_first_delay_seconds,
            poll_max_delay_seconds=self.poll_max_delay_seconds,
            poll_max_wait_seconds=self.poll_max_wait_seconds,
            concurrency=self.concurrency,
            upload_threads=self.upload_threads,
            timeout_seconds=self.timeout(),
            redrive=False,
            results_path=None,
            function_log=self.function_log,
            progress=self.progress,
        )
        if not self.faults:
            rates: dict[str, Any] = {f.name: 0.0 for f in dataclasses.fields(SoakConfig) if f.name.endswith("_rate")}
            rates.update(rate_5xx=0.0, rate_429=0.0, rate_reset=0.0)
            base = dataclasses.replace(base, **rates)
        return dataclasses.replace(base, **self.fault_overrides)

    def emulator(self, mode: str) -> dict[str, Any]:
        settings = self.soak().emulator()
        # No artificial queue delay: with a plan limit, Magic Hour's queue is the plan's, not a fixed pause.
        settings["queue_seconds"] = 0.0
        if emulator_models_the_plan():
            settings.update({PLAN_LIMIT_FIELD: self.limit, PLAN_MODE_FIELD: mode})
        return settings


@dataclass
class FloodResult:
    passed: bool
    report: dict[str, Any]
    text: str


class CallCounter:
    """The AWS calls the functions make, and their invocations: what one upload costs, for ``docs/scale.md``.

    botocore's ``before-call`` on boto3's default session sees every client (the functions', the harness's, the
    local stack's own), so a call is counted only on a thread that is inside a function invocation: the harness's
    uploads, scans and queue checks, and the local event sources' ReceiveMessage/DeleteMessageBatch (modelled by
    ``cutout_dev.bench.cost``, as Lambda's pollers are not billed per call), stay out.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.invocations: Counter[str] = Counter()
        self.durations_ms: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._inside = threading.local()

    def __call__(self, event_name: str, **_: Any) -> None:
        if getattr(self._inside, "function", None) is None:
            return
        op = event_name.split(".", 1)[1]
        with self._lock:
            self.calls[op] += 1

    def watch(self, function: Any) -> None:
        """Mark the function's invocations (on whatever thread runs them) and time them."""
        original = function.invoke
        name = function.logical_id

        def invoke(event: Any) -> Any:
            self._inside.function = name
            t0 = time.perf_counter()
            try:
                return original(event)
            finally:
                self._inside.function = None
                with self._lock:
                    self.invocations[name] += 1
                    self.durations_ms.setdefault(name, []).append((time.perf_counter() - t0) * 1000)

        function.invoke = invoke


class SlotSampler:
    """Reads admission control's slot items once a second (a diagnostic, not a check): how many slots were held,
    by whom, and the effective limit, so a throughput below the bound can be traced to what held the slots.

    Knows only the storage contract of ``cutout.admission.control`` (items ``slot#<i>`` with a ``holder``, and
    ``admission#limit`` with ``effective``, in the jobs table); nothing when admission control is absent.
    """

    def __init__(self, stack: LocalStack, slots: int, interval: float = 1.0) -> None:
        self._ddb = stack.client("dynamodb")
        self._table = stack.endpoints.table
        self._keys = [f"slot#{i}" for i in range(slots)] + ["admission#limit"]
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flood-slot-sampler", daemon=True)
        self.samples: list[tuple[float, list[str], int | None]] = []  # (epoch, holders, effective limit)

    def __enter__(self) -> SlotSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.samples.append(self.read())
            except Exception:  # a diagnostic must not end the run (e.g. moto busy at shutdown)
                log.debug("slot sample failed", exc_info=True)

    def read(self) -> tuple[float, list[str], int | None]:
        """(now, holders of the held slots, effective limit) in one consistent BatchGetItem."""
        resp = self._ddb.batch_get_item(
            RequestItems={self._table: {"Keys": [{"job_id": {"S": k}} for k in self._keys], "ConsistentRead": True}}
        )
        holders: list[str] = []
        effective: int | None = None
        for item in resp.get("Responses", {}).get(self._table, []):
            key = item["job_id"]["S"]
            if key.startswith("slot#") and "holder" in item:
                holders.append(item["holder"]["S"])
            elif key == "admission#limit" and "effective" in item:
                effective = int(item["effective"]["N"])
        return time.time(), holders, effective

    def summary(self, jobs: dict[str, dict[str, Any]], window: tuple[float, float] | None) -> dict[str, Any]:
        """Slots held (max, mean over the backlog window) and slot-seconds by what the holder turned out to be."""
        if not self.samples:
            return {"samples": 0}
        inside = [s for s in self.samples if window is None or window[0] <= s[0] <= window[1]] or self.samples
        by_kind: Counter[str] = Counter()
        for _, holders, _ in inside:
            for holder in holders:
                job = jobs.get(holder, {})
                if job.get("ambiguous") or job.get("error_code") == "create_outcome_unknown":
                    kind = "ambiguous create"
                elif job:
                    kind = str(job.get("status"))
                else:
                    kind = "unknown holder"
                by_kind[kind] += 1
        limits = [e for _, _, e in self.samples if e is not None]
        return {
            "samples": len(self.samples),
            "max_held": max(len(h) for _, h, _ in self.samples),
            "mean_held_in_window": round(sum(len(h) for _, h, _ in inside) / len(inside), 2),
            "slot_seconds_in_window_by_holder_outcome": {
                k: round(v * self._interval, 1) for k, v in by_kind.most_common()
            },
            "effective_limit_min": min(limits) if limits else None,
            "effective_limit_last": limits[-1] if limits else None,
        }


# ---------------------------------------------------------------------------------------------------------
def _say(cfg: FloodConfig, text: str) -> None:
    if cfg.progress:
        print(text, file=sys.stderr, flush=True)


def _epoch(iso_text: Any) -> float | None:
    if not isinstance(iso_text, str) or not iso_text:
        return None
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


def _plan(cfg: FloodConfig, soak: SoakConfig) -> list[tuple[str, bytes, bool, bool]]:
    """(relative key, bytes, duplicate its event, kill its worker) per upload; deterministic from the seed."""
    rng = random.Random(cfg.seed)
    plan = []
    for i in range(cfg.uploads):
        fmt = "PNG" if i % 3 else "JPEG"
        ext = "png" if fmt == "PNG" else "jpg"
        key = f"flood/{i // 100:03d}/{i:05d}-{_NAMES[i % len(_NAMES)]}.{ext}"
        dup = rng.random() < soak.duplicate_event_rate
        kill = rng.random() < soak.kill_rate
        plan.append((key, _image(rng, fmt), dup, kill))
    return plan


def template_max_receive_count() -> dict[str, int]:
    """maxReceiveCount per source queue (logical id), from template.yaml's redrive policies."""
    resources = load_template(PROJECT_ROOT / "template.yaml")["Resources"]
    out: dict[str, int] = {}
    for name, res in resources.items():
        policy = (res.get("Properties") or {}).get("RedrivePolicy") if res.get("Type") == "AWS::SQS::Queue" else None
        if isinstance(policy, dict) and "maxReceiveCount" in policy:
            out[name] = int(policy["maxReceiveCount"])
    return out


def emulator_models_the_plan() -> bool:
    from cutout_dev.emulator.config import EmulatorConfig

    return PLAN_LIMIT_FIELD in {f.name for f in dataclasses.fields(EmulatorConfig)}


def template_has_parameter(name: str) -> bool:
    return name in (load_template(PROJECT_ROOT / "template.yaml").get("Parameters") or {})


# ---------------------------------------------------------------------------------------------------------
def _wait(stack: LocalStack, cfg: FloodConfig, job_ids: set[str], deadline: float, t0: float) -> bool:
    """Until every job is terminal and the stack is quiet (True), or nothing moves with jobs open / deadline (False)."""
    last_print = 0.0
    while time.monotonic() < deadline:
        statuses = stack.job_statuses()
        open_ids = [i for i in job_ids if statuses.get(i) not in TERMINAL]
        now = time.monotonic()
        if now - last_print >= 30:
            counts = Counter(status for i, status in statuses.items() if i in job_ids)
            missing = len(job_ids) - sum(counts.values())
            depths = {k: v for k, v in stack.queue_depths().items() if v}
            _say(
                cfg,
                f"[{now - t0:6.1f}s] jobs {dict(sorted(counts.items()))} no record {missing} queues {depths or '{}'}",
            )
            last_print = now
        if not open_ids and _wait_quiet(stack, min(deadline, time.monotonic() + 10)):
            return True
        # Quiet with jobs open is normal under admission control for a while: uploads wait while every slot is
        # held by a create of unknown outcome, until its bound passes and the periodic tick frees it. Only a
        # stack quiet for longer than that is stuck (then the harness's sweeper, with its clock ahead, ends it).
        stuck_after = cfg.poll_max_wait_seconds + 2 * cfg.sweeper_interval_seconds
        if open_ids and stack.quiescent() and _wait_quiet(stack, min(deadline, now + stuck_after + 5), stuck_after):
            return False
        time.sleep(cfg.scan_interval_seconds)
    return False


def _wait_slots_free(sampler: SlotSampler, seconds: float) -> list[str]:
    """The holders still holding slots once none are, or when `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        _, holders, _ = sampler.read()
        if not holders or time.monotonic() >= deadline:
            return holders
        time.sleep(1)


# ---------------------------------------------------------------------------------------------------------
def max_open(intervals: list[tuple[float, float]]) -> int:
    """Highest number of half-open intervals [start, end) covering one instant (a sweep over the edges)."""
    return peak(intervals)[0]


def peak(intervals: list[tuple[float, float]]) -> tuple[int, float | None]:
    """(highest number open at once, the first instant it was reached)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])  # ends sort before starts
    best, at, current = 0, None, 0
    for instant, delta in edges:
        current += delta
        if current > best:
            best, at = current, instant
    return best, at


def measure(
    cfg: FloodConfig,
    uploads: list[UploadRecord],
    upload_times: dict[str, float],
    jobs: list[dict[str, Any]],
    projects: list[Any],
    pollers: dict[str, Any],
    plan_reading: int | None,
) -> dict[str, Any]:
    """Concurrency at Magic Hour, throughput vs the bound, receives per message, the latency Cutout added."""
    job_by_id = {str(j["job_id"]): j for j in jobs}
    ours = {u.job_id for u in uploads}
    prefix = "cutout:"
    mine = [p for p in projects if (p.name or "").startswith(prefix) and p.name[len(prefix) :] in ours]
    end = time.time()
    intervals: list[tuple[float, float]] = []
    for p in mine:
        finished = p.finished_at
        if finished is None:
            # Never finished at Magic Hour: it counts against the plan until Cutout gave up on it (its record's
            # last update), or to the end of the run if Cutout never did.
            job = job_by_id.get(p.name[len(prefix) :], {})
            gave_up = _epoch(job.get("updated_at")) if job.get("status") in TERMINAL else None
            finished = gave_up or end
        intervals.append((p.created_at, max(finished, p.created_at)))
    highest, peak_at = peak(intervals)
    # Who was open at the peak, when it is over the limit: the evidence to trace a slot handed on too early.
    over_limit = []
    if highest > cfg.in_flight and peak_at is not None:
        for p, (start, stop) in zip(mine, intervals, strict=True):
            if start <= peak_at < stop:
                job = job_by_id.get(p.name[len(prefix) :], {})
                over_limit.append(
                    {
                        "job_id": p.name[len(prefix) :],
                        "project_id": p.id,
                        "created": round(start - peak_at, 3),
                        "finished": round(stop - peak_at, 3),
                        "status": job.get("status"),
                        "error_code": job.get("error_code"),
                        "slot": job.get("slot"),
                    }
                )
    rendered = [p.finished_at - p.started_at for p in mine if p.started_at and p.finished_at and p.status == "complete"]
    handoff = _slot_handoffs(mine, job_by_id, prefix)
    render_mean = sum(rendered) / len(rendered) if rendered else None

    creates = sorted(p.created_at for p in mine)
    finishes = sorted(p.finished_at for p in mine if p.finished_at is not None)
    throughput: dict[str, Any] = {"bound_per_second": round(cfg.bound_per_second, 3)}
    # The steady state: from the first finish (before it every slot is still on its first render, so nothing can
    # finish however good the pipeline) to the last create (after it the backlog is gone and slots drain).
    if finishes and creates and creates[-1] > finishes[0]:
        w0, w1 = finishes[0], creates[-1]
        done_in_window = sum(1 for f in finishes if w0 < f <= w1)
        rate = done_in_window / (w1 - w0)
        throughput.update(
            backlog_window_seconds=round(w1 - w0, 1),
            finished_in_window=done_in_window,
            per_second=round(rate, 3),
            ratio=round(rate / cfg.bound_per_second, 3),
            # Magic Hour's own render time as it happened (the emulator's render is a real fetch + Pillow on top
            # of render_seconds, slower on a loaded machine): the bound Cutout could actually reach.
            measured_render_seconds=round(render_mean, 3) if render_mean else None,
            bound_at_measured_render=round(min(cfg.in_flight, cfg.limit) / render_mean, 3) if render_mean else None,
            ratio_at_measured_render=round(rate * render_mean / min(cfg.in_flight, cfg.limit), 3)
            if render_mean
            else None,
            window_epoch=[w0, w1],
        )
    terminal_times = [t for j in jobs if j.get("job_id") in ours and (t := _epoch(j.get("updated_at")))]
    if upload_times and terminal_times:
        span = max(terminal_times) - min(upload_times.values())
        throughput["overall_seconds"] = round(span, 1)
        throughput["overall_per_second"] = round(len(uploads) / span, 3) if span > 0 else None

    # The latency Cutout added, for the last LATENCY_TAIL uploads to complete.
    project_by_id = {p.id: p for p in mine}
    rows = []
    for u in uploads:
        record = job_by_id.get(u.job_id)
        if not record or record.get("status") != "complete":
            continue
        job = record
        p = project_by_id.get(str(job.get("project_id")))
        stored, recorded = _epoch(job.get("completed_at")), _epoch(job.get("created_at"))
        if p is None or p.finished_at is None or stored is None or recorded is None or u.key not in upload_times:
            continue
        before = recorded - upload_times[u.key]
        after = stored - p.finished_at
        rows.append(
            {
                "stored": stored,
                "added": before + after,
                "before": before,
                "after": after,
                "waited": p.created_at - recorded,
            }
        )
    rows.sort(key=lambda r: r["stored"])
    tail = rows[-LATENCY_TAIL:]

    def pct(key: str) -> dict[str, float | None]:
        values = [r[key] * 1000 for r in tail]
        return {f"p{q}": (round(quantile(values, q / 100), 1) if values else None) for q in (50, 90, 95, 99)}

    receives = {
        name: {"max": p.stats.max_receive_count, "histogram": dict(sorted(p.stats.receive_counts.items()))}
        for name, p in pollers.items()
    }
    return {
        "max_concurrent_at_magic_hour": highest,
        "open_at_peak_when_over_limit": over_limit,
        "max_rendering_reported_by_emulator": plan_reading,
        "max_jobs_in_flight": cfg.in_flight,
        "plan_limit": cfg.limit,
        "throughput": throughput,
        "receives": receives,
        "added_latency_last_ms": {"n": len(tail), **pct("added")},
        "added_before_last_ms": pct("before"),  # S3 upload -> job record
        "added_after_last_ms": pct("after"),  # Magic Hour finished -> cutout stored
        "slot_wait_last_ms": pct("waited"),  # job record -> Magic Hour create: the wait for a plan slot
        "slot_handoff": handoff,
    }


def _slot_handoffs(mine: list[Any], job_by_id: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    """Where a slot's time went besides renders: per slot (the one each job records), the gap from one project's
    finish at Magic Hour to the next project's create on that slot, i.e. the finish report + release + dispatch +
    create of the next job, plus whatever held the slot without a project (a create that never happened, a
    dropped webhook waiting for the next status check)."""
    by_slot: dict[str, list[tuple[float, float]]] = {}
    for p in mine:
        job = job_by_id.get(p.name[len(prefix) :], {})
        if not job.get("slot") or p.finished_at is None:
            continue
        by_slot.setdefault(str(job["slot"]), []).append((p.created_at, p.finished_at))
    gaps: list[float] = []
    for runs in by_slot.values():
        runs.sort()
        gaps.extend(nxt[0] - prev[1] for prev, nxt in itertools.pairwise(runs) if nxt[0] >= prev[1])
    if not gaps:
        return {"n": 0}
    ms = [g * 1000 for g in gaps]
    return {
        "n": len(ms),
        "mean_ms": round(sum(ms) / len(ms), 1),
        **{f"p{q}_ms": round(quantile(ms, q / 100), 1) for q in (50, 90, 99)},
        "over_5s": sum(1 for g in gaps if g > 5),
    }


# ---------------------------------------------------------------------------------------------------------
def _put_all(stack: LocalStack, cfg: FloodConfig, plan: list[tuple[str, bytes, bool, bool]]) -> dict[str, float]:
    """The burst: every object PUT in parallel; returns when each was accepted (epoch seconds) by key."""
    ep = stack.endpoints
    s3 = stack.client("s3")  # botocore clients are thread-safe
    times: dict[str, float] = {}
    lock = threading.Lock()

    def put(item: tuple[str, bytes, bool, bool]) -> None:
        key = ep.input_prefix + item[0]
        started = time.time()
        s3.put_object(Bucket=ep.bucket, Key=key, Body=item[1])
        with lock:
            times[key] = started

    with ThreadPoolExecutor(max_workers=cfg.upload_threads) as pool:
        list(pool.map(put, plan))
    return times


def run_mode(cfg: FloodConfig, mode: str) -> dict[str, Any]:
    """One flood on a fresh local stack with the emulator in `mode`; the reconciled report."""
    import boto3
    from cutout.domain.models import job_id_for

    t0 = time.monotonic()
    soak = cfg.soak()
    plan = _plan(cfg, soak)
    boto3.setup_default_session()
    counter = CallCounter()
    assert boto3.DEFAULT_SESSION is not None
    # Before the stack starts, so every client it and its functions create inherits the handler.
    boto3.DEFAULT_SESSION.events.register("before-call", counter)
    log_path = cfg.function_log.with_name(f"{cfg.function_log.stem}-{mode}.log") if cfg.function_log else None
    if log_path is not None:
        log_path.unlink(missing_ok=True)
    stack_cfg = LocalStackConfig(
        webhooks=True,
        emulator=cfg.emulator(mode),
        parameters={
            "PollFirstDelaySeconds": str(cfg.poll_first_delay_seconds),
            "PollMaxDelaySeconds": str(cfg.poll_max_delay_seconds),
            "PollMaxWaitSeconds": str(cfg.poll_max_wait_seconds),
            "PollMaxAttempts": "100",
            "MaximumConcurrency": cfg.concurrency,
            "MaxJobsInFlight": str(cfg.in_flight),
            **(
                {"UnknownOutcomeHoldSeconds": str(cfg.unknown_outcome_hold_seconds)}
                if cfg.unknown_outcome_hold_seconds is not None
                else {}
            ),
        },
        visibility_timeout_seconds={
            INGEST_QUEUE: cfg.ingest_visibility_seconds,
            "PollQueue": cfg.visibility_seconds,
            "CompletionQueue": cfg.visibility_seconds,
        },
        # The sweeper on a period, as deployed (scaled down): its reconciliation repairs leaked slots and
        # dispatches waiting jobs a missed wake-up left behind.
        schedule_interval_seconds=cfg.sweeper_interval_seconds,
        function_log=log_path,
        # moto on the other core (MotoServer): the harness measures the pipeline, not one shared interpreter.
        aws_in_own_process=True,
    )
    injected = Injected()
    extra: dict[str, Any] = {}
    with LocalStack(stack_cfg) as stack:
        ep = stack.endpoints
        uploads: dict[str, UploadRecord] = {}
        for i, (rel, body, dup, kill) in enumerate(plan):
            key = ep.input_prefix + rel
            etag = hashlib.md5(body, usedforsecurity=False).hexdigest()  # S3's ETag of a single-part PUT
            uploads[key] = UploadRecord(i, key, etag, job_id_for(ep.bucket, key, etag), dup, kill)
        _inject(stack, soak, uploads, injected)
        for function in stack.functions.values():
            counter.watch(function)
        _say(cfg, f"[{mode}] stack up in {time.monotonic() - t0:.1f} s; putting {cfg.uploads} objects at once")
        t_put = time.monotonic()
        with SlotSampler(stack, cfg.in_flight) as sampler:
            upload_times = _put_all(stack, cfg, plan)
            put_seconds = time.monotonic() - t_put
            _say(cfg, f"[{mode}] {cfg.uploads} PUTs in {put_seconds:.1f} s")

            deadline = t_put + cfg.timeout()
            job_ids = {u.job_id for u in uploads.values()}
            if not _wait(stack, cfg, job_ids, deadline, t_put):
                stuck = [j for j in stack.jobs() if j["job_id"] in job_ids and j.get("status") not in TERMINAL]
                if stuck:
                    _say(cfg, f"[{mode}] {len(stuck)} job(s) open and nothing moving: sweeper")
                    outcome = _run_sweeper(stack, soak)
                    extra["sweeper"] = f"{len(stuck)} stuck job(s) -> {outcome}"
                    _wait(stack, cfg, job_ids, deadline, t_put)
        elapsed = time.monotonic() - t_put
        # Every job is terminal; a slot may still be held by an ambiguous create's job until its bound
        # (PollMaxWaitSeconds from the acquire) and the next reconciliation: give that its time, no more.
        held_at_end = _wait_slots_free(sampler, cfg.poll_max_wait_seconds + 2 * cfg.sweeper_interval_seconds + 30)
        dlq = _dlq_contents(stack)
        jobs = stack.jobs()
        emulator = stack.emulator
        report = reconcile(list(uploads.values()), jobs, dlq, emulator.state, injected)
        plan_stats = getattr(emulator, "plan_stats", None)  # the emulator's own reading, where it models a plan
        plan_reading = plan_stats().overall.max_concurrent_rendering if plan_stats is not None else None
        pollers = {p.source.queue_id: p for p in stack.pollers}
        report["flood"] = measure(
            cfg,
            list(uploads.values()),
            upload_times,
            jobs,
            emulator.state.project_list(),
            pollers,
            plan_reading if isinstance(plan_reading, int) else None,
        )
        window = report["flood"]["throughput"].get("window_epoch")
        report["flood"]["slots"] = sampler.summary(
            {str(j["job_id"]): j for j in jobs}, (window[0], window[1]) if window else None
        )
        report["flood"]["slots"]["held_at_end"] = held_at_end
        report["flood"]["slots"]["repairs"] = slot_repairs(log_path)
        report["emulator_requests"] = emulator.state.request_counts()
        report["invocation_errors"] = dict(
            Counter(
                f"{inv.function}: {str(inv.error).split(':', 1)[0]}" for inv in list(stack.invocations) if inv.error
            )
        )
    boto3.DEFAULT_SESSION.events.unregister("before-call", counter)
    report["mode"] = mode
    report["put_seconds"] = round(put_seconds, 1)
    report["elapsed_seconds"] = round(elapsed, 1)
    report["extra"] = extra
    # The harness's own re-sends of S3 events (the duplicate-delivery fault) run inside the submit invocation.
    counter.calls["sqs.SendMessage"] -= len(injected.duplicate_events)
    report["aws_calls_per_upload"] = {k: round(v / cfg.uploads, 3) for k, v in sorted(counter.calls.items()) if v}
    report["invocations_per_upload"] = {k: round(v / cfg.uploads, 3) for k, v in sorted(counter.invocations.items())}
    report["invocation_ms"] = {k: summary(v, 1) for k, v in sorted(counter.durations_ms.items())}
    _judge(cfg, report)
    return report


def _judge(cfg: FloodConfig, report: dict[str, Any]) -> None:
    """The flood's checks on top of the soak's (lost, non-terminal, creates per upload, ledger)."""
    flood = report["flood"]
    limits = template_max_receive_count()
    worst = {q: r["max"] for q, r in flood["receives"].items()}
    over = {q: n for q, n in worst.items() if q in limits and n > limits[q] - 1}
    checks = dict(report["checks"])
    checks["every DLQ empty"] = not any(report["dlq"].values())
    checks["max concurrent at Magic Hour <= MaxJobsInFlight"] = flood["max_concurrent_at_magic_hour"] <= cfg.in_flight
    ratio = flood["throughput"].get("ratio")
    checks[f"throughput >= {cfg.throughput_floor:g} x bound"] = ratio is not None and ratio >= cfg.throughput_floor
    checks["receives per message <= maxReceiveCount - 1"] = not over
    checks["no slot held after the run"] = not flood.get("slots", {}).get("held_at_end")
    flood["max_receive_count"] = limits
    report["checks"] = checks
    report["passed"] = all(checks.values())


# ---------------------------------------------------------------------------------------------------------
def render(cfg: FloodConfig, reports: list[dict[str, Any]]) -> str:
    ok = {True: "OK", False: "FAIL"}
    faults = "the soak's fault mix" if cfg.faults else "no faults"
    lines = [
        f"Cutout flood — {cfg.uploads} uploads at once, plan limit {cfg.limit}, MaxJobsInFlight {cfg.in_flight}, "
        f"{cfg.render_seconds:g} s renders, {faults}, seed {cfg.seed}",
    ]
    for r in reports:
        f = r["flood"]
        t = f["throughput"]
        led = r["ledger"]
        lat = f["added_latency_last_ms"]
        lines += [
            "-" * 100,
            f"mode {r['mode']}: {r['uploads']} uploads PUT in {r['put_seconds']} s, all terminal after "
            f"{r['elapsed_seconds']} s",
            f"{'  terminal states':<40}{' · '.join(f'{k} {v}' for k, v in r['statuses'].items())}",
            f"{'  lost':<40}{len(r['lost'])}",
            f"{'  non-terminal':<40}{len(r['non_terminal'])}",
            f"{'  DLQ depths':<40}{' · '.join(f'{k} {v}' for k, v in r['dlq'].items())}",
            (
                f"{'  creates per upload':<40}"
                + ", ".join(f"{n}: {c}" for n, c in r["creates_histogram"].items())
                + f" (total {r['creates_total']}; ambiguous {len(r['ambiguous'])}, duplicates "
                f"{len(r['duplicate_creates'])}, unexpected {len(r['unexpected_creates'])})"
            ),
            (
                f"{'  credits: ledger vs table':<40}{led['emulator_net_credits']} vs {led['table_credits']} "
                f"(explained {led['explained_difference']})"
            ),
            (
                f"{'  max concurrent at Magic Hour':<40}{f['max_concurrent_at_magic_hour']} (MaxJobsInFlight "
                f"{f['max_jobs_in_flight']}, plan {f['plan_limit']}; emulator's max rendering "
                f"{f['max_rendering_reported_by_emulator']})"
            ),
            (
                f"{'  throughput (backlog window)':<40}{t.get('per_second')} /s vs bound {t['bound_per_second']} /s "
                f"= {t.get('ratio')} over {t.get('backlog_window_seconds')} s; overall "
                f"{t.get('overall_per_second')} /s; Magic Hour's renders took {t.get('measured_render_seconds')} s "
                f"(ratio at that: {t.get('ratio_at_measured_render')})"
            ),
            (
                f"{'  slots (admission control)':<40}"
                + (
                    f"max held {sl['max_held']}, mean {sl['mean_held_in_window']} in the window; slot-seconds by "
                    f"holder: {sl['slot_seconds_in_window_by_holder_outcome']}; effective limit min "
                    f"{sl['effective_limit_min']}"
                    if (sl := f.get("slots", {})).get("samples") and sl.get("max_held")
                    else "none seen"
                )
            ),
            (
                f"{'  slots held at the end / repaired':<40}{len(f['slots'].get('held_at_end', []))} / "
                f"{f['slots'].get('repairs', {}).get('repaired_metric_sum')} "
                f"{f['slots'].get('repairs', {}).get('reasons') or ''}"
            ),
            (
                f"{'  receives per message (max)':<40}"
                + " · ".join(f"{q} {v['max']}" for q, v in f["receives"].items())
                + f" (maxReceiveCount {max(f['max_receive_count'].values(), default=0)})"
            ),
            (
                f"{'  added latency, last ' + str(lat['n']):<40}p50 {lat['p50']} ms · p90 {lat['p90']} ms · "
                f"p95 {lat['p95']} ms · p99 {lat['p99']} ms"
            ),
            (
                f"{'    = upload->record + finished->stored':<40}p50 {f['added_before_last_ms']['p50']} + "
                f"{f['added_after_last_ms']['p50']} ms; not counted: the wait for a slot, p50 "
                f"{f['slot_wait_last_ms']['p50']} ms"
            ),
            (
                f"{'  slot hand-off (finish -> next create)':<40}"
                + (
                    f"p50 {h['p50_ms']} ms · p90 {h['p90_ms']} ms · mean {h['mean_ms']} ms over {h['n']}; "
                    f"{h['over_5s']} over 5 s"
                    if (h := f.get("slot_handoff", {})).get("n")
                    else "n/a"
                )
            ),
        ]
        lines += [f"  {ok[v]:<5}{name}" for name, v in r["checks"].items()]
        if r["invocation_errors"]:
            lines.append(f"  invocation errors: {r['invocation_errors']}")
    lines.append("RESULT: " + ("PASS" if all(r["passed"] for r in reports) else "FAIL"))
    return "\n".join(lines)


def _config_json(cfg: FloodConfig, mode: str) -> str:
    doc = dataclasses.asdict(dataclasses.replace(cfg, modes=(mode,), results_path=None))
    return json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in doc.items()})


def _config_from_json(text: str) -> FloodConfig:
    doc = json.loads(text)
    doc["modes"] = tuple(doc["modes"])
    doc["results_path"] = Path(doc["results_path"]) if doc.get("results_path") else None
    doc["function_log"] = Path(doc["function_log"]) if doc.get("function_log") else None
    return FloodConfig(**doc)


def _run_isolated(cfg: FloodConfig, mode: str) -> dict[str, Any]:
    """One mode in a child process: a second local stack in one process would inherit the first one's closed
    function-log stream (Powertools' logger keeps the stream it found at import), as the bench's e2e part notes."""
    with tempfile.TemporaryDirectory(prefix="cutout-flood-") as tmp:
        out = Path(tmp) / f"{mode}.json"
        cmd = [sys.executable, "-m", "cutout_dev.flood", "--config-json", _config_json(cfg, mode), "--report", str(out)]
        proc = subprocess.run(cmd, check=False)  # progress goes straight to this process's stderr
        if not out.is_file():
            raise RuntimeError(f"flood in mode {mode} ended without a report (exit status {proc.returncode})")
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return report


def run(cfg: FloodConfig) -> FloodResult:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if not template_has_parameter("MaxJobsInFlight"):
        _say(cfg, "note: template.yaml has no MaxJobsInFlight (no admission control): concurrency checks will fail")
    if not emulator_models_the_plan():
        _say(cfg, "note: the emulator has no plan limit: every create renders at once (modes are the same)")
    reports = [_run_isolated(cfg, mode) for mode in cfg.modes] if len(cfg.modes) > 1 else [run_mode(cfg, cfg.modes[0])]
    text = render(cfg, reports)
    passed = all(r["passed"] for r in reports)
    if cfg.results_path is not None:
        cfg.results_path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "passed": passed,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
            "modes": {r["mode"]: r for r in reports},
        }
        cfg.results_path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return FloodResult(passed, {"modes": {r["mode"]: r for r in reports}}, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.flood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=FloodConfig.uploads)
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both", help="the emulator's plan behaviour")
    parser.add_argument("--limit", type=int, default=FloodConfig.limit, help="Magic Hour plan limit")
    parser.add_argument(
        "--max-jobs-in-flight", type=int, default=None, help="the template's MaxJobsInFlight (default: --limit)"
    )
    parser.add_argument("--render-seconds", type=float, default=FloodConfig.render_seconds)
    parser.add_argument("--seed", type=int, default=FloodConfig.seed)
    parser.add_argument(
        "--unknown-outcome-hold", type=int, default=None, help="UnknownOutcomeHoldSeconds (default: the template's)"
    )
    parser.add_argument("--no-faults", action="store_true", help="no injected faults (the plan limit only)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to wait at most, per mode")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="JSON results file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    # Internal: one mode's run in a child process (see _run_isolated).
    parser.add_argument("--config-json", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.config_json:
        child = _config_from_json(args.config_json)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        report = run_mode(child, child.modes[0])
        args.report.write_text(json.dumps(report, default=str), encoding="utf-8")
        return 0
    cfg = FloodConfig(
        uploads=args.uploads,
        modes=MODES if args.mode == "both" else (args.mode,),
        limit=args.limit,
        max_jobs_in_flight=args.max_jobs_in_flight,
        render_seconds=args.render_seconds,
        unknown_outcome_hold_seconds=args.unknown_outcome_hold,
        seed=args.seed,
        faults=not args.no_faults,
        timeout_seconds=args.timeout,
        results_path=args.results,
        progress=not args.quiet,
    )
    result = run(cfg)
    print(result.text, flush=True)
    if cfg.results_path is not None:
        print(f"results: {cfg.results_path}", flush=True)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
