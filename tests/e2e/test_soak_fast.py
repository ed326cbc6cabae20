"""The fault-injection soak, small: ~40 uploads through the local stack with the full fault mix (`make soak` runs
the same harness with 320). Every upload must end terminal (or dead-lettered and redriven), each with exactly one
Magic Hour create outside the listed ambiguous cases, and the emulator's credit ledger must match the jobs table
except for ambiguous creates the table could not know about."""

from __future__ import annotations

import time
from pathlib import Path

from cutout_dev.soak import SoakConfig, run


def test_soak_fast(tmp_path: Path) -> None:
    cfg = SoakConfig(
        uploads=40,
        seed=7,
        # Shorter timings than `make soak` so the test stays well under a minute: the lease still outlives one
        # create (spikes are shorter here) and is shorter than the ingest visibility timeout.
        latency_spike_seconds=0.5,
        kill_rate=0.08,  # a few kills even in 40 uploads (a target whose create fails ambiguously is not killed)
        ingest_visibility_seconds=8,
        submit_lease_seconds=5,
        poll_max_wait_seconds=15,
        timeout_seconds=50,
        results_path=tmp_path / "soak.json",
        function_log=tmp_path / "functions.log",
        progress=False,
    )
    t0 = time.monotonic()
    result = run(cfg)
    elapsed = time.monotonic() - t0
    report = result.report
    print(result.text)

    assert report["uploads"] == 40
    assert report["lost"] == [], result.text
    assert report["non_terminal"] == [], result.text
    assert report["duplicate_creates"] == [], result.text
    assert report["unexpected_creates"] == [], result.text
    assert report["foreign_creates"] == [], result.text
    assert report["ledger"]["ok"], result.text
    assert report["ledger"]["unexplained"] == [], result.text
    # Outside the listed ambiguous cases every upload was created exactly once.
    ambiguous = {a["job_id"] for a in report["ambiguous"]}
    assert sum(report["statuses"].values()) == 40
    assert report["creates_total"] >= 40 - len(ambiguous) - report["statuses"].get("rejected", 0)
    # The faults really happened.
    assert report["injected"]["duplicate_events"] > 0
    assert report["injected"]["killed_workers"] > 0
    assert report["webhooks"]["dropped"] > 0
    assert report["passed"], result.text
    assert (tmp_path / "soak.json").is_file()
    assert elapsed < 60, f"fast soak took {elapsed:.0f} s"
