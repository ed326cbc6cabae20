"""`make bench` still works: the smoke mode runs every part tiny and produces every figure.

Structure only — no timing thresholds: a smoke run's numbers mean nothing on a shared CI machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _is_summary(s: Any) -> bool:
    return isinstance(s, dict) and {"median", "iqr", "mad", "n"} <= set(s) and s["n"] > 0 and s["median"] is not None


def _is_ratio(r: Any) -> bool:
    return isinstance(r, dict) and isinstance(r.get("value"), float) and len(r.get("ci95", [])) == 2


@pytest.mark.slow
def test_bench_smoke_produces_every_figure(tmp_path: Path) -> None:
    # given / when: the smoke run, as `CUTOUT_BENCH_SMOKE=1 make bench` would run it (part 7: its own test)
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cutout_dev.bench", "--smoke", "--parts", "1,2,3,4,6", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    # then: it finished, printed the report and the summary table, and wrote every part's figures
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "make docs-figures" in proc.stdout
    assert "| Figure | Cutout | Baseline | Ratio |" in proc.stdout
    res = json.loads(out.read_text())
    assert res["smoke"] is True
    assert {"nproc", "arch", "python"} <= set(res["machine"])

    cold = res["cold_start"]["handlers"]
    assert cold
    for entry in cold.values():
        for key in (
            "ready_cpu_ms",
            "floor_ready_cpu_ms",
            "floor_b_ready_cpu_ms",
            "ready_ms",
            "floor_ready_ms",
            "floor_b_ready_ms",
            "import_ms",
            "floor_import_ms",
            "floor_b_import_ms",
            "peak_rss_mb",
        ):
            assert _is_summary(entry[key]), key
        # Both floors, each ratio with its interval and target: the total over (a), our own code over (b).
        assert _is_ratio(entry["ratio"])
        assert entry["ratio"]["target"] == 1.15
        assert _is_ratio(entry["ratio_over_b"])
        assert entry["ratio_over_b"]["target"] == 1.05
        assert _is_ratio(entry["floor_b_over_a"])
        # Floor (b) is built from what the handler loads: Powertools' Logger at least, and every module it loaded.
        assert "aws_lambda_powertools.logging.logger" in entry["powertools_modules"]
        assert entry["floor_b_covers_powertools"] is True
        for key in ("importtime", "importtime_over_b"):
            assert entry[key]["top_self_ms"], f"no -X importtime lines parsed ({key})"
    assert "(a) " in proc.stdout and "(b) " in proc.stdout

    per = res["per_record"]
    for key in ("wall_ms_per_record", "floor_wall_ms_per_record", "cpu_ms_per_record", "floor_cpu_ms_per_record"):
        assert _is_summary(per[key]), key
    assert _is_ratio(per["ratio"])
    assert _is_ratio(per["cpu_ratio"])
    assert per["failures"] == {"handler": 0, "floor": 0}
    # Counted, not assumed: every image made AWS calls and exactly the creates it should.
    assert sum(per["aws_calls_per_image"].values()) > 0
    assert per["magic_hour_calls_per_image"]["create"] == 1.0
    assert per["floor_magic_hour_calls_per_image"]["create"] == 1.0

    for mode in ("webhooks", "polling"):
        m = res["e2e"]["modes"][mode]
        assert m["images"] > 0, f"{mode}: no image completed ({m['failures']} failures)"
        assert _is_summary(m["added_ms"])
        assert m["added_p95_ms"] is not None
        assert m["bound_per_s"] > 0
        assert m["throughput_vs_bound"] is not None

    layer = res["footprint"]["layer"]
    assert layer["unzipped_bytes"] > 0
    assert set(res["footprint"]["functions"]) >= {"submit", "webhook", "poll", "finalize"}

    # Part 6: an upload that waits for a slot, counted against one that does not, and what waiting costs. (Not
    # invocations: how SQS batches the dispatch messages with uploads decides those, not the waiting.)
    w = res["waiting"]
    assert w["uploads"]["waited"] > 0
    calls = w["aws_calls_per_image"]
    assert set(calls) == {"no_wait", "waiting", "added_by_waiting"}
    # What waiting adds is a difference of two phases' totals, so every op's figures must add up.
    for op, added in calls["added_by_waiting"].items():
        assert calls["waiting"][op] == pytest.approx(calls["no_wait"].get(op, 0.0) + added, abs=0.002), op
    # A waiting upload's own work includes the recheck of the slots after recording `waiting`: one BatchGetItem that
    # no other path makes, so it shows even in a run this small. Its UpdateItems (recording `waiting`, the dispatch
    # waiting -> submitting) are not compared here: the webhook's replay marks (one per delivery, retries included)
    # and a poll that beats the webhook to a finish add +-1 UpdateItem per image at random, more than a 3-and-5
    # upload smoke can tell apart; `make bench` (10 and 20 uploads) reports them.
    assert calls["waiting"]["dynamodb.BatchGetItem"] > calls["no_wait"]["dynamodb.BatchGetItem"]
    # Every line is priced, but none has a sign a run this small can trust: the Lambda lines come from measured
    # durations and invocations (how SQS batched them), and DynamoDB's from call counts that the UpdateItems above
    # move by +-1 per image (a fresh-clone CI run priced it -0.001). `make bench` reports the figures.
    assert {"lambda_compute", "lambda_requests", "sqs", "dynamodb"} <= set(w["waiting_usd_per_1000_images_by_line"])
    assert isinstance(w["waiting_usd_per_1000_images"], float)
    assert "-- 6. waiting for a slot" in proc.stdout
    assert "| AWS calls per image that waited for a slot (dispatch included) |" in proc.stdout
    assert "| AWS cost of waiting per 1,000 images |" in proc.stdout

    cost = res["cost"]
    assert set(cost["usd_per_1000_images"]) == {
        "lambda_compute",
        "lambda_requests",
        "sqs",
        "dynamodb",
        "s3_requests",
        "eventbridge",
    }
    assert cost["magic_hour_credits_per_1000_images"] == 5000
