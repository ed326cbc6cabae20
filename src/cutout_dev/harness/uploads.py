"""The uploads a harness makes and the wait for their end: the plan (deterministic from a seed), the job id each
upload will have, and the wait until every job is terminal and the stack quiet, with the sweeper for jobs that
nothing else will end."""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from cutout.domain.models import TERMINAL, job_id_for

from cutout_dev.harness.checks import CheckResult
from cutout_dev.harness.faults import FaultSettings, UploadRecord, run_sweeper
from cutout_dev.harness.images import NAMES, image
from cutout_dev.harness.quiet import say, wait_quiet
from cutout_dev.local_stack import LocalStack

Plan = list[tuple[str, bytes, bool, bool]]
"""(key relative to the input prefix, bytes, duplicate its event, kill its worker) per upload."""


def plan_uploads(
    count: int, stem: Callable[[int], str], rng: random.Random, duplicate_rate: float, kill_rate: float
) -> Plan:
    """`count` distinct images, one in three a JPEG, upload i keyed `<stem(i)>-<name>.<ext>`; deterministic from
    `rng` (each upload draws its image, then its duplicate and kill faults)."""
    plan = []
    for i in range(count):
        fmt = "PNG" if i % 3 else "JPEG"
        ext = "png" if fmt == "PNG" else "jpg"
        key = f"{stem(i)}-{NAMES[i % len(NAMES)]}.{ext}"
        body = image(rng, fmt)
        plan.append((key, body, rng.random() < duplicate_rate, rng.random() < kill_rate))
    return plan


def upload_records(stack: LocalStack, plan: Plan) -> dict[str, UploadRecord]:
    """Keys and job ids by key, known before anything is uploaded: S3's ETag of a single-part PUT is the MD5."""
    ep = stack.endpoints
    uploads: dict[str, UploadRecord] = {}
    for i, (rel, body, dup, kill) in enumerate(plan):
        key = ep.input_prefix + rel
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        uploads[key] = UploadRecord(i, key, etag, job_id_for(ep.bucket, key, etag), dup, kill)
    return uploads


class Waiting(NamedTuple):
    """How a harness waits: progress lines every `report_every` seconds (when `progress`), and how long the stack
    must stay quiet with jobs open before they count as stuck."""

    progress: bool
    report_every: float
    stuck_after: float
    poll_every: float = 0.5


def wait_terminal(stack: LocalStack, job_ids: set[str], deadline: float, started: float, how: Waiting) -> bool:
    """Until every job is terminal and the stack is quiet (True), or the stack stays quiet with jobs open for
    `how.stuck_after` seconds, or the deadline passes (False)."""
    last_print = 0.0
    while time.monotonic() < deadline:
        statuses = stack.job_statuses()
        open_ids = [i for i in job_ids if statuses.get(i) not in TERMINAL]
        now = time.monotonic()
        if now - last_print >= how.report_every:
            counts = Counter(status for i, status in statuses.items() if i in job_ids)
            missing = len(job_ids) - sum(counts.values())
            depths = {k: v for k, v in stack.queue_depths().items() if v}
            say(
                how.progress,
                f"[{now - started:6.1f}s] jobs {dict(sorted(counts.items()))} open {len(open_ids)} "
                f"no record {missing} queues {depths or '{}'}",
            )
            last_print = now
        if not open_ids and wait_quiet(stack, min(deadline, time.monotonic() + 10)):
            return True
        if (
            open_ids
            and stack.quiescent()
            and wait_quiet(stack, min(deadline, time.monotonic() + how.stuck_after + 5), how.stuck_after)
        ):
            return False
        time.sleep(how.poll_every)
    return False


def end_stuck_jobs(
    stack: LocalStack,
    faults: FaultSettings,
    job_ids: set[str],
    wait_again: Callable[[], bool],
    tell: Callable[[str], None],
) -> dict[str, Any]:
    """The jobs still open with nothing moving, ended by one sweeper run with its clock past every bound (then the
    wait again); what was swept, for the report (empty when nothing was stuck)."""
    stuck = [j for j in stack.jobs() if j["job_id"] in job_ids and j.get("status") not in TERMINAL]
    if not stuck:
        return {}
    tell(f"{len(stuck)} job(s) open and nothing moving: sweeper")
    outcome = run_sweeper(stack, faults)
    wait_again()
    after = {str(j["job_id"]): j for j in stack.jobs() if j["job_id"] in job_ids}
    return {
        "sweeper": f"{len(stuck)} stuck job(s) -> {outcome}",
        "swept": [
            {
                "job_id": j["job_id"],
                "key": j.get("source_key"),
                "status": j.get("status"),
                "project_id": j.get("project_id"),
                "ended": ":".join(str(after.get(j["job_id"], {}).get(k) or "") for k in ("status", "error_code")),
            }
            for j in stuck
        ],
    }


def check_forced_sweep(extra: dict[str, Any], allowed: int = 0) -> CheckResult:
    """The jobs only the harness's sweeper (its clock moved past every bound) could end: `allowed` (0) at most.
    Everything the pipeline starts must end through its own paths within the run (the poll bound, the admission
    tick, the scheduled sweeper on its real clock); a job the forced sweep had to end is one the run could not
    end, and it is listed with what it was doing."""
    swept = extra.get("swept", [])
    detail = "; ".join(f"{s['job_id'][:12]} {s['status']} -> {s.get('ended') or '?'}" for s in swept[:5])
    return CheckResult(
        f"jobs ended by the forced sweep <= {allowed}", len(swept) <= allowed, f"{len(swept)} swept {detail}".strip()
    )
