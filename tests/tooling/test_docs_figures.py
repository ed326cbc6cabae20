"""Every measured figure in README.md and docs/ agrees with its results file (bench/*.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cutout_dev.docs_figures import DOCS, PROJECT_ROOT, RENDERERS, regions, stale


def test_every_figure_region_agrees_with_its_results_file() -> None:
    behind = stale()
    assert behind == [], f"stale figures {behind}: run `make docs-figures` (python -m cutout_dev.docs_figures)"


def test_every_renderer_is_used_and_every_region_is_known() -> None:
    used = [name for rel in DOCS for name in regions((PROJECT_ROOT / rel).read_text(encoding="utf-8"))]
    assert set(used) == set(RENDERERS)
    assert "readme-headline" in regions((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))


def test_a_results_file_that_changed_makes_its_regions_stale(tmp_path: Path) -> None:
    # given the docs as committed and a copy of the results where the soak ran a different number of uploads
    bench = tmp_path / "bench"
    shutil.copytree(PROJECT_ROOT / "bench", bench)
    soak = json.loads((bench / "soak-results.json").read_text(encoding="utf-8"))
    soak["uploads"] += 1
    (bench / "soak-results.json").write_text(json.dumps(soak), encoding="utf-8")
    # when checked against the copy, then every region quoting the soak is named, and only those
    assert sorted(stale(PROJECT_ROOT, bench)) == sorted(
        ["README.md: readme-headline", "docs/soak.md: soak-report", "docs/benchmarks.md: run-durations"]
    )
