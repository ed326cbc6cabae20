"""`make bench` part 7 (renditions) still works: the smoke run renders every bench preset from a small cutout and
produces every figure. Structure only, no timing thresholds: a smoke run's numbers mean nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_renditions_smoke_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cutout_dev.bench", "--smoke", "--parts", "7", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "-- 7. renditions (Pillow" in proc.stdout
    res = json.loads(out.read_text())["renditions"]
    assert set(res["per_preset"]) == set(res["presets"]) == {"marketplace", "storefront", "thumb", "mask", "cropped"}
    for key in ("render_all_cpu_ms", "floor_cpu_ms", "decode_cpu_ms", "judge_cpu_ms"):
        assert res[key]["n"] == res["runs"] and res[key]["median"] > 0, key
    assert res["ratio"]["target"] == 1.3 and isinstance(res["ratio"]["value"], float)
    # every preset rendered what it says: the marketplace canvas exact, the thumbnail capped
    assert (res["per_preset"]["marketplace"]["width"], res["per_preset"]["marketplace"]["height"]) == (2000, 2000)
    assert max(res["per_preset"]["thumb"]["width"], res["per_preset"]["thumb"]["height"]) <= 400
    assert all(p["bytes"] > 0 and p["encode_cpu_ms"]["n"] == res["runs"] for p in res["per_preset"].values())
    memory = res["memory"]
    assert memory["decoded_mb"] > 0 and memory["peak_added_mb"] >= 0 and memory["after_imports_mb"] > 0
    cold = res["cold_start"]
    assert cold["ratio"]["target"] == 1.1 and cold["import_cpu_ms"]["n"] == cold["floor_cpu_ms"]["n"] >= 2
    assert "PIL.Image" in cold["floor"]
    # pyvips is not a dependency: measured only where installed, and said so otherwise
    assert res["pyvips"]["measured"] in (True, False)
    assert "| Renditions: decode + 5 presets" in proc.stdout
