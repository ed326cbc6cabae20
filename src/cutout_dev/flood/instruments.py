"""What the flood watches while it runs: the AWS calls the functions make, and admission's slots once a second."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from cutout_dev.local_stack import LocalStack

log = logging.getLogger(__name__)


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


def wait_slots_free(sampler: SlotSampler, seconds: float) -> list[str]:
    """The holders still holding slots once none are, or when `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        _, holders, _ = sampler.read()
        if not holders or time.monotonic() >= deadline:
            return holders
        time.sleep(1)
