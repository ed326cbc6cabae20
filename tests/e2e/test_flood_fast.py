"""The flood, small: a burst of 120 distinct uploads against a Magic Hour plan of 10, once per plan behaviour
(`make flood` runs the same harness with 2,000). With the soak's faults on, every upload must end terminal, nothing
may be dead-lettered or lost, no upload created twice outside the listed ambiguous cases, the credit ledger must
match the table, Magic Hour must never hold more open projects than `MaxJobsInFlight`, and no message may be
received more than `maxReceiveCount` - 1 times (waiting must not burn receives).

Throughput against the plan's bound is measured and printed, not asserted: a test carries no timing threshold, and
at this size on a shared machine the local stack, not the plan, may set the pace. `make flood` judges it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cutout_dev.flood import MODES, FloodConfig, run


@pytest.mark.timeout(900)  # the harness's own deadline (600 s) comes first and says what did not end
@pytest.mark.parametrize("mode", MODES)
def test_flood_fast(mode: str, tmp_path: Path) -> None:
    # Given a plan of 10 that queues (or rejects) what is beyond it, and the soak's faults
    cfg = FloodConfig(
        uploads=120,
        modes=(mode,),
        limit=10,
        render_seconds=0.3,
        seed=7,
        # The soak fast test's shorter timings: the lease still outlives one create and is shorter than the ingest
        # visibility timeout.
        ingest_visibility_seconds=8,
        submit_lease_seconds=5,
        poll_max_wait_seconds=10,
        sweeper_interval_seconds=5,
        scan_interval_seconds=2,
        timeout_seconds=600,  # a bound on a hang, not a figure (the machine may be loaded)
        results_path=tmp_path / "flood.json",
        function_log=tmp_path / "functions.log",
        progress=False,
    )

    # When 120 uploads land at once
    result = run(cfg)
    print(result.text)
    report = result.report["modes"][mode]
    flood = report["flood"]

    # Then nothing is lost, stuck, paid twice or unaccounted for
    assert report["uploads"] == 120
    assert sum(report["statuses"].values()) == 120
    assert report["lost"] == [], result.text
    assert report["non_terminal"] == [], result.text
    assert report["duplicate_creates"] == [], result.text
    assert report["unexpected_creates"] == [], result.text
    assert report["foreign_creates"] == [], result.text
    assert report["ledger"]["ok"], result.text
    # and the faults really happened
    assert report["injected"]["duplicate_events"] > 0
    assert report["injected"]["killed_workers"] > 0
    # and the figures `make flood` prints are there
    assert flood["throughput"]["per_second"] > 0
    assert flood["added_latency_last_ms"]["n"] > 0
    assert (tmp_path / "flood.json").is_file()
    # and the plan was respected without dead-lettering or burning receives on the waiting uploads
    assert all(n == 0 for n in report["dlq"].values()), result.text
    if mode == "queue":
        # the emulator accepts every create (beyond the plan it queues them): only Cutout keeps them within the limit
        assert flood["max_concurrent_at_magic_hour"] <= cfg.in_flight, result.text
    else:
        # the emulator refuses what is beyond its plan, so its projects cannot outnumber it: what shows Cutout
        # keeping to the limit is that the plan never had to refuse (an unknown outcome's slot is freed 5 s after,
        # when a 0.3 s render has long finished)
        assert flood["plan_refusals"] == 0, result.text
    assert report["checks"]["jobs ended by the forced sweep <= 0"], result.text
    # and every slot was given back (by its job's ending path, or by reconciliation with a logged reason)
    assert flood["slots"]["held_at_end"] == [], result.text
    limits = flood["max_receive_count"]
    assert all(flood["receives"][q]["max"] <= limits[q] - 1 for q in limits if q in flood["receives"]), result.text
