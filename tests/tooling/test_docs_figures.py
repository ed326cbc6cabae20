"""Every measured figure in README.md and docs/ agrees with its results file (bench/*.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cutout_dev import results_schema
from cutout_dev.bench import cost
from cutout_dev.docs_figures import DOCS, PROJECT_ROOT, RENDERERS, cost_source, outdated, regions, stale, write


def test_every_figure_region_agrees_with_its_results_file() -> None:
    behind = stale()
    assert behind == [], f"stale figures {behind}: run `make docs-figures` (python -m cutout_dev.docs_figures)"


def test_no_results_file_predates_the_code_that_writes_it() -> None:
    # the figures in the docs come from runs of the current code: rerun what is named, then `make docs-figures`
    assert outdated() == []


def test_every_renderer_is_used_and_every_region_is_known() -> None:
    used = [name for rel in DOCS for name in regions((PROJECT_ROOT / rel).read_text(encoding="utf-8"))]
    assert set(used) == set(RENDERERS)
    assert "readme-headline" in regions((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))


def _current_copy(tmp_path: Path) -> Path:
    """A project root whose bench/ holds the committed results restamped as the current code's (the bench's cost
    recomputed by today's model) and whose docs are rendered from them: what a rerun would give, in shape."""
    root = tmp_path / "root"
    shutil.copytree(PROJECT_ROOT / "bench", root / "bench")
    (root / "docs").mkdir()
    for rel in DOCS:
        shutil.copy(PROJECT_ROOT / rel, root / rel)
    for name, (version, _) in results_schema.PRODUCERS.items():
        path = root / "bench" / name
        if path.is_file():
            doc = json.loads(path.read_text(encoding="utf-8"))
            if name == "results.json":
                doc["cost"] = cost.model(doc.get("e2e"), doc.get("per_record"))
            path.write_text(json.dumps(results_schema.stamped(doc, version)), encoding="utf-8")
    write(root)
    return root


def test_a_results_file_that_changed_makes_its_regions_stale(tmp_path: Path) -> None:
    # given docs rendered from current results, and then the soak's file with a different number of uploads
    root = _current_copy(tmp_path)
    bench = root / "bench"
    soak = json.loads((bench / "soak-results.json").read_text(encoding="utf-8"))
    soak["uploads"] += 1
    (bench / "soak-results.json").write_text(json.dumps(soak), encoding="utf-8")
    # when checked against it, then every region quoting the soak is named, and only those
    assert sorted(stale(root)) == sorted(
        ["README.md: readme-headline", "docs/soak.md: soak-report", "docs/benchmarks.md: run-durations"]
    )


def test_a_results_file_older_than_its_producer_is_not_read_and_fails_the_check(tmp_path: Path) -> None:
    # given current results, then the soak's file as an older soak wrote it (no schema field: version 1)
    root = _current_copy(tmp_path)
    assert outdated(root) == []
    soak = json.loads((root / "bench" / "soak-results.json").read_text(encoding="utf-8"))
    del soak[results_schema.FIELD]
    (root / "bench" / "soak-results.json").write_text(json.dumps(soak), encoding="utf-8")
    # then the check names it, and the regions quoting it say they are not measured instead of showing its figures
    assert [why.split(" was ")[0] for why in outdated(root)] == ["bench/soak-results.json"]
    write(root)
    soak_md = (root / "docs" / "soak.md").read_text(encoding="utf-8")
    assert "Not measured with the current code: bench/soak-results.json" in soak_md


def test_every_figure_says_where_it_came_from(tmp_path: Path) -> None:
    # given docs rendered from current results
    root = _current_copy(tmp_path)
    readme = (root / "README.md").read_text(encoding="utf-8")
    benchmarks = (root / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    scale_md = (root / "docs" / "scale.md").read_text(encoding="utf-8")
    # then the cost line names its conditions, the floods' figure and the idle stack's, and its source
    (cost_line,) = [line for line in readme.splitlines() if line.startswith("- **Cost**")]
    assert "arriving one at a time with none waiting" in cost_line
    assert "in the floods" in cost_line and "a month for the stack standing idle (modelled)" in cost_line
    assert "(measured)" in cost_line or "(modelled" in cost_line
    # and no latency row is dropped, the fixed cost states its assumptions, and modelled figures say so
    assert benchmarks.count("| Latency added,") == 2
    assert "standing idle (modelled)" in benchmarks and "Assumptions:" in benchmarks
    assert "Durations are modelled" in scale_md and "Magic Hour credits (modelled)" in scale_md


def test_a_cost_input_the_bench_did_not_measure_is_labelled_modelled() -> None:
    # given an end-to-end part that counted calls and invocations but timed no function
    e2e = {
        "modes": {
            "webhooks": {
                "images": 4,
                "aws_calls_per_image": {"s3.GetObject": 1},
                "invocations_per_image": {"SubmitFunction": 1.0},
                "invocation_ms": {},
            }
        }
    }
    sources = cost.model(e2e, None)["sources"]
    # then calls and invocations are measured, durations modelled, and the whole figure is not called measured
    assert sources["aws_calls"].startswith("measured") and sources["invocations"].startswith("measured")
    assert sources["durations"].startswith("modelled for SubmitFunction")
    assert cost_source(cost.model(e2e, None)) == "modelled: durations"


def test_the_idle_cost_counts_the_templates_resources() -> None:
    # given template.yaml read as text (not through the model's own reader)
    text = (PROJECT_ROOT / "template.yaml").read_text(encoding="utf-8")
    fixed = cost.fixed_monthly(256)
    # then every alarm, dashboard, key and secret it declares is priced
    assert fixed["counts"]["alarms"] == text.count("Type: AWS::CloudWatch::Alarm\n")
    assert fixed["usd"]["alarms"] == round(text.count("Type: AWS::CloudWatch::Alarm\n") * cost.ALARM_MONTH_USD, 4)
    assert fixed["counts"]["secrets"] == text.count("Type: AWS::SecretsManager::Secret\n")
    assert fixed["counts"]["kms_keys"] == text.count("Type: AWS::KMS::Key\n")
    assert fixed["total"] == round(sum(fixed["usd"].values()), 2)
