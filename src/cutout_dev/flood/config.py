"""The flood's settings (plan limit, render time, the soak's fault mix, timings) and what it reads from the
template and the emulator."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutout_dev.local_stack.cfn_yaml import load_template
from cutout_dev.local_stack.stack import PROJECT_ROOT
from cutout_dev.soak import SoakConfig

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
    # live worker dead, and, with every reconciling function using it (harness.LEASE_READERS), frees a killed worker's
    # slot while its project still renders (lease + UnknownOutcomeHoldSeconds must outlast a render: at 10 s with
    # 20 s renders the 2,000-upload flood saw 52 projects for 50 slots). The ingest visibility timeout is longer
    # still, so a killed worker's batch comes back to a stale claim (and, as on AWS, >= the function timeout).
    ingest_visibility_seconds: int = 35
    submit_lease_seconds: int = 31
    visibility_seconds: int = 15  # poll and completion queues: the soak's, for its reason (soak/config.py)
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
