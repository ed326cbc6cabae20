"""The soak's settings (fault rates, compressed timings) and its result."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutout_dev.local_stack.stack import PROJECT_ROOT

DEFAULT_RESULTS = PROJECT_ROOT / "bench" / "soak-results.json"
DESCRIPTION = (
    "Fault-injection soak: hundreds of uploads through the local stack while everything that can go wrong does."
)


@dataclass
class SoakConfig:
    """Every roll is seeded, so a run replays. Timings are shortened through the stack's options (visibility
    timeouts, poll schedule, emulator render time) and one setting the template hard-codes: the submit lease, given
    to the functions through their ``configure`` seam, like the failure hook and the sweeper's clock."""

    uploads: int = 320
    seed: int = 20250611
    # Emulator faults (EmulatorConfig fields); the generic transport faults hit create and GET.
    rate_5xx: float = 0.10
    rate_429: float = 0.10
    rate_reset: float = 0.03
    render_error_rate: float = 0.05
    latency_seconds: float = 0.01
    latency_spike_rate: float = 0.05
    latency_spike_seconds: float = 1.0
    cancel_rate: float = 0.01
    never_complete_rate: float = 0.01
    drop_webhook_rate: float = 0.20
    duplicate_webhook_rate: float = 0.10
    expired_download_rate: float = 0.10
    fault_endpoints: tuple[str, ...] = ("create", "get")
    render_seconds: float = 0.3
    # Pipeline faults injected by the harness.
    duplicate_event_rate: float = 0.10
    kill_rate: float = 0.03
    # Timings. The submit lease must outlive one create (spikes + 429 back-off) and be shorter than the ingest
    # queue's visibility timeout, so a killed worker's claim is stale by the time its batch comes back.
    ingest_visibility_seconds: int = 15
    submit_lease_seconds: int = 10
    # Poll and completion queues: short, so a completion that must wait (its job not recorded yet) comes back
    # within the run, but longer than a batch takes on a loaded 2-core machine (a finalize batch of 5 at ~2.3 s a
    # record under CI's load). Shorter, a batch still running is delivered again to another worker: receives climb
    # towards the DLQ with nothing failing (the template keeps visibility >= 6 x the consumer's timeout for this).
    visibility_seconds: int = 15
    poll_first_delay_seconds: int = 2
    poll_max_delay_seconds: int = 5
    poll_max_wait_seconds: int = 40
    concurrency: str = "4"  # the template's MaximumConcurrency parameter (per SQS event source)
    # The template's MaxJobsInFlight. The soak's stand-in has no plan limit and a tenth of its creates end with an
    # unknown outcome (each keeps its slot until evidence or its bound), so the soak runs with more slots than a
    # Creator plan's 3: admission still makes most uploads wait, and the faults do not starve it.
    max_jobs_in_flight: str = "10"
    upload_threads: int = 4
    timeout_seconds: float = 540.0  # hard limit for waiting (the whole run stays under 10 minutes)
    redrive: bool = True
    results_path: Path | None = DEFAULT_RESULTS
    function_log: Path | None = Path(tempfile.gettempdir()) / "cutout-soak-functions.log"
    progress: bool = True
    # Local period of the scheduled functions: the admission tick (slot reconciliation, dispatch of waiting jobs)
    # is every minute on AWS; the soak's timings are compressed, so is its tick.
    schedule_interval_seconds: float = 3.0

    def emulator(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "rate_5xx": self.rate_5xx,
            "rate_429": self.rate_429,
            "rate_reset": self.rate_reset,
            "render_error_rate": self.render_error_rate,
            "latency_seconds": self.latency_seconds,
            "latency_spike_rate": self.latency_spike_rate,
            "latency_spike_seconds": self.latency_spike_seconds,
            "cancel_rate": self.cancel_rate,
            "never_complete_rate": self.never_complete_rate,
            "drop_webhook_rate": self.drop_webhook_rate,
            "duplicate_webhook_rate": self.duplicate_webhook_rate,
            "expired_download_rate": self.expired_download_rate,
            "fault_endpoints": self.fault_endpoints,
            "render_seconds": self.render_seconds,
            "queue_seconds": 0.05,
            "webhook_base_delay_seconds": 0.2,
        }


@dataclass
class SoakResult:
    passed: bool
    report: dict[str, Any]
    text: str
