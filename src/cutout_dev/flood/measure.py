"""The flood's measurements: concurrency at Magic Hour, throughput against the plan's bound, receives per message,
the latency Cutout added, and where a slot's time went between renders."""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from typing import Any

from cutout.domain.models import TERMINAL

from cutout_dev.bench.stats import quantile
from cutout_dev.flood.config import LATENCY_TAIL, FloodConfig
from cutout_dev.harness import UploadRecord

PREFIX = "cutout:"  # Magic Hour project names: the prefix, then the job id


def epoch(iso_text: Any) -> float | None:
    if not isinstance(iso_text, str) or not iso_text:
        return None
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


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


def _job_of(p: Any, job_by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return job_by_id.get(p.name[len(PREFIX) :], {})


def _open_intervals(mine: list[Any], job_by_id: dict[str, dict[str, Any]], end: float) -> list[tuple[float, float]]:
    """[created, finished) per project at Magic Hour."""
    intervals: list[tuple[float, float]] = []
    for p in mine:
        finished = p.finished_at
        if finished is None:
            # Never finished at Magic Hour: it counts against the plan until Cutout gave up on it (its record's
            # last update), or to the end of the run if Cutout never did.
            job = _job_of(p, job_by_id)
            gave_up = epoch(job.get("updated_at")) if job.get("status") in TERMINAL else None
            finished = gave_up or end
        intervals.append((p.created_at, max(finished, p.created_at)))
    return intervals


def _open_at_peak(
    mine: list[Any], intervals: list[tuple[float, float]], peak_at: float, job_by_id: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Who was open at the peak: the evidence to trace a slot handed on too early."""
    over_limit = []
    for p, (start, stop) in zip(mine, intervals, strict=True):
        if start <= peak_at < stop:
            job = _job_of(p, job_by_id)
            over_limit.append(
                {
                    "job_id": p.name[len(PREFIX) :],
                    "project_id": p.id,
                    "created": round(start - peak_at, 3),
                    "finished": round(stop - peak_at, 3),
                    "status": job.get("status"),
                    "error_code": job.get("error_code"),
                    "slot": job.get("slot"),
                }
            )
    return over_limit


def _backlog_window(cfg: FloodConfig, mine: list[Any], render_mean: float | None) -> dict[str, Any]:
    """Throughput over the steady state: from the first finish (before it every slot is still on its first render,
    so nothing can finish however good the pipeline) to the last create (after it the backlog is gone and slots
    drain). Empty when there was no such window."""
    creates = sorted(p.created_at for p in mine)
    finishes = sorted(p.finished_at for p in mine if p.finished_at is not None)
    if not (finishes and creates and creates[-1] > finishes[0]):
        return {}
    w0, w1 = finishes[0], creates[-1]
    done_in_window = sum(1 for f in finishes if w0 < f <= w1)
    rate = done_in_window / (w1 - w0)
    slots = min(cfg.in_flight, cfg.limit)
    return {
        "backlog_window_seconds": round(w1 - w0, 1),
        "finished_in_window": done_in_window,
        "per_second": round(rate, 3),
        "ratio": round(rate / cfg.bound_per_second, 3),
        # Magic Hour's own render time as it happened (the emulator's render is a real fetch + Pillow on top
        # of render_seconds, slower on a loaded machine): the bound Cutout could actually reach.
        "measured_render_seconds": round(render_mean, 3) if render_mean else None,
        "bound_at_measured_render": round(slots / render_mean, 3) if render_mean else None,
        "ratio_at_measured_render": round(rate * render_mean / slots, 3) if render_mean else None,
        "window_epoch": [w0, w1],
    }


def _overall(uploads: list[UploadRecord], upload_times: dict[str, float], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """First PUT to the last record's terminal update, for the whole flood."""
    ours = {u.job_id for u in uploads}
    terminal_times = [t for j in jobs if j.get("job_id") in ours and (t := epoch(j.get("updated_at")))]
    if not (upload_times and terminal_times):
        return {}
    span = max(terminal_times) - min(upload_times.values())
    return {
        "overall_seconds": round(span, 1),
        "overall_per_second": round(len(uploads) / span, 3) if span > 0 else None,
    }


def _latency_row(
    u: UploadRecord, job: dict[str, Any] | None, p: Any, upload_times: dict[str, float]
) -> dict[str, float] | None:
    """The latency Cutout added for one completed upload: before (upload -> record) and after (finished -> stored)."""
    if not job or job.get("status") != "complete" or p is None or p.finished_at is None:
        return None
    stored, recorded = epoch(job.get("completed_at")), epoch(job.get("created_at"))
    if stored is None or recorded is None or u.key not in upload_times:
        return None
    before = recorded - upload_times[u.key]
    after = stored - p.finished_at
    return {
        "stored": stored,
        "added": before + after,
        "before": before,
        "after": after,
        "waited": p.created_at - recorded,
    }


def _latency_tail(
    uploads: list[UploadRecord], job_by_id: dict[str, dict[str, Any]], mine: list[Any], upload_times: dict[str, float]
) -> list[dict[str, float]]:
    """The latency rows of the last LATENCY_TAIL uploads to complete."""
    project_by_id = {p.id: p for p in mine}
    rows = []
    for u in uploads:
        job = job_by_id.get(u.job_id)
        p = project_by_id.get(str(job.get("project_id"))) if job else None
        row = _latency_row(u, job, p, upload_times)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: r["stored"])
    return rows[-LATENCY_TAIL:]


def _percentiles(tail: list[dict[str, float]], key: str) -> dict[str, float | None]:
    values = [r[key] * 1000 for r in tail]
    return {f"p{q}": (round(quantile(values, q / 100), 1) if values else None) for q in (50, 90, 95, 99)}


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
    mine = [p for p in projects if (p.name or "").startswith(PREFIX) and p.name[len(PREFIX) :] in ours]
    intervals = _open_intervals(mine, job_by_id, time.time())
    highest, peak_at = peak(intervals)
    over_limit = (
        _open_at_peak(mine, intervals, peak_at, job_by_id) if highest > cfg.in_flight and peak_at is not None else []
    )
    rendered = [p.finished_at - p.started_at for p in mine if p.started_at and p.finished_at and p.status == "complete"]
    handoff = _slot_handoffs(mine, job_by_id, PREFIX)
    render_mean = sum(rendered) / len(rendered) if rendered else None
    throughput: dict[str, Any] = {"bound_per_second": round(cfg.bound_per_second, 3)}
    throughput.update(_backlog_window(cfg, mine, render_mean))
    throughput.update(_overall(uploads, upload_times, jobs))
    tail = _latency_tail(uploads, job_by_id, mine, upload_times)
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
        "added_latency_last_ms": {"n": len(tail), **_percentiles(tail, "added")},
        "added_before_last_ms": _percentiles(tail, "before"),  # S3 upload -> job record
        "added_after_last_ms": _percentiles(tail, "after"),  # Magic Hour finished -> cutout stored
        "slot_wait_last_ms": _percentiles(tail, "waited"),  # job record -> Magic Hour create: the wait for a slot
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
