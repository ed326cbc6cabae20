"""Every measured figure in README.md and docs/ is written here from its results file, never copied by hand.

    python -m cutout_dev.docs_figures           # rewrite the marked regions (make docs-figures)
    python -m cutout_dev.docs_figures --check   # exit 1 and name each region that disagrees with its results

A region is the text between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->``; NAME picks the renderer
below, which reads only ``bench/*.json`` (written by ``make bench``, ``make soak``, ``make flood`` and
``python -m cutout_dev.flood``). So two places quoting the same run cannot disagree, and a rerun updates both. The
test suite runs the check (tests/tooling/test_docs_figures.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cutout_dev import flood, scale, soak
from cutout_dev.bench.calls import calls_row
from cutout_dev.results_schema import Missing, Results

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/benchmarks.md", "docs/soak.md", "docs/scale.md")
REGION = re.compile(r"(<!-- figures:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /figures:(?P=name) -->)", re.S)

# What each results file is (the name a reader sees next to a figure).
BENCH = "results.json"  # make bench
SOAK = "soak-results.json"  # make soak
FLOOD = "flood-results.json"  # make flood: both modes
FLOOD_QUEUE_RERUN = "flood-queue-final.json"  # python -m cutout_dev.flood --mode queue (after two harness fixes)
FLOOD_NO_FAULTS = "flood-nofaults.json"  # python -m cutout_dev.flood --uploads 250 --mode queue --no-faults


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _ratio(r: dict[str, Any] | None) -> str:
    if not r or r.get("value") is None:
        return "n/a"
    ci = r.get("ci95")
    interval = f" [{ci[0]:.2f}-{ci[1]:.2f}]" if ci else ""
    return f"{r['value']:.2f}x{interval}"


def _median(s: dict[str, Any] | None, digits: int = 0, unit: str = "ms") -> str:
    if not s or s.get("median") is None:
        return "n/a"
    return f"{s['median']:.{digits}f} {unit}"


def _e2e_uncapped(bench: dict[str, Any]) -> bool:
    """Whether the end-to-end part let every concurrent upload have a Magic Hour slot (else it measured waiting)."""
    e2e = bench.get("e2e") or {}
    return int(e2e.get("max_jobs_in_flight") or 0) >= int(e2e.get("concurrency") or 1)


def _flood_queue(res: Results) -> dict[str, Any]:
    rerun = res.get(FLOOD_QUEUE_RERUN)
    return dict(rerun["modes"]["queue"]) if rerun else dict(res.need(FLOOD)["modes"]["queue"])


def _queue_rerun_note(res: Results) -> str:
    """When the queue-mode figure is a rerun's: what the first run said, beside it."""
    if not res.get(FLOOD_QUEUE_RERUN):
        return ""
    first = res.need(FLOOD)["modes"]["queue"]
    failed = [name for name, ok in first["checks"].items() if not ok]
    verdict = "FAIL (" + "; ".join(failed) + ")" if failed else "PASS"
    return f"; queueing figure from a rerun (`bench/{FLOOD_QUEUE_RERUN}`), the first run: {verdict}"


def _flood_reject(res: Results) -> dict[str, Any]:
    return dict(res.need(FLOOD)["modes"]["reject"])


# -- renderers: one per region name ---------------------------------------------------------------------------
def readme_headline(res: Results) -> str:
    bench, soak_run = res.need(BENCH), res.need(SOAK)
    queue, reject = _flood_queue(res), _flood_reject(res)
    worst = max(bench["cold_start"]["handlers"].values(), key=lambda h: h["ratio"]["value"])["ratio"]
    cost = bench["cost"]
    dup = len(soak_run["duplicate_creates"]) + len(queue["duplicate_creates"]) + len(reject["duplicate_creates"])
    lost = len(soak_run["lost"]) + len(queue["lost"]) + len(reject["lost"])
    slots = min(int(res.need(FLOOD)["config"].get("limit") or 3), max(scale.PLANS.values()))
    flood_usd = sorted(scale.mode_usd(m, slots) for m in (queue, reject))
    return "\n".join(
        [
            f"- **Cost**: ${cost['aws_total_usd_per_1000_images']:.4f} of AWS per 1,000 images arriving one at a "
            f"time with none waiting ({cost_source(cost)}); ${flood_usd[0]:.4f}-${flood_usd[-1]:.4f} per 1,000 in "
            f"the floods (every upload waited, faults injected); plus ${cost['fixed_usd_per_month']['total']:.2f} a "
            f"month for the stack standing idle (modelled); next to {cost['magic_hour_credits_per_1000_images']:,} "
            f"Magic Hour credits per 1,000 ([benchmarks](docs/benchmarks.md), [scale](docs/scale.md)).",
            f"- **Cold start**: every function within {worst['value']:.2f}x of a bare Python function that only "
            f"imports boto3 and requests (target {worst['target']:.2f}x).",
            f"- **Faults**: {soak_run['uploads']} uploads while Magic Hour, S3 events and workers misbehave: "
            f"{_verdict(soak_run)} ([soak](docs/soak.md)).",
            f"- **Floods**: {queue['uploads']:,} uploads at once against a plan of "
            f"{queue['flood']['plan_limit']}: {_ratio_text(queue)} (Magic Hour queueing) and "
            f"{_ratio_text(reject)} (Magic Hour refusing with 429) of the plan's pace"
            f"{_queue_rerun_note(res)}; queueing {_verdict(queue)}; refusing {_verdict(reject)} "
            "([scale](docs/scale.md)).",
            f"- Across the soak and both floods: {lost} uploads lost, {dup} paid twice.",
        ]
    )


def _verdict(run: dict[str, Any]) -> str:
    """PASS or FAIL with the failed checks, and how many jobs only the harness's forced sweep ended."""
    failed = [name for name, ok in run["checks"].items() if not ok]
    swept = len((run.get("extra") or {}).get("swept", []))
    return ("PASS" if not failed else "FAIL (" + "; ".join(failed) + ")") + f", {swept} ended by the forced sweep"


def _ratio_text(run: dict[str, Any]) -> str:
    ratio = run["flood"]["throughput"].get("ratio")
    return f"{ratio:.3f}" if ratio is not None else "not measured"


def run_durations(res: Results) -> str:
    bench, soak_run, flood_run = res.need(BENCH), res.need(SOAK), res.need(FLOOD)
    flood_seconds = sum(m["elapsed_seconds"] for m in flood_run["modes"].values())
    return (
        "\n".join(
            [
                "| command | what | the last run took |",
                "|---|---|---|",
                f"| `make bench` | cold start, cost per record, end to end, footprint, waiting | "
                f"{_minutes(bench['elapsed_seconds'])} |",
                f"| `make soak` | {soak_run['uploads']} uploads under injected faults | "
                f"{_minutes(soak_run['elapsed_seconds'])} |",
                f"| `make flood` | {len(flood_run['modes'])} modes x {flood_run['config']['uploads']:,} uploads | "
                f"{_minutes(flood_seconds)} |",
            ]
        )
        + "\n\nEach adds a minute or two of setup on a fresh clone. Times are from the shared 2-core machine the "
        + ("project is developed on.")
    )


def bench_table(res: Results) -> str:
    bench = res.need(BENCH)
    m = bench["machine"]
    rows: list[tuple[str, str, str, str]] = []
    for fn, e in bench["cold_start"]["handlers"].items():
        rows.append(
            (
                f"Cold start `{fn}` (CPU)",
                _median(e["ready_cpu_ms"]),
                f"bare {_median(e['floor_ready_cpu_ms'])}; with Powertools {_median(e['floor_b_ready_cpu_ms'])}",
                f"{_ratio(e['ratio'])} (target {e['ratio']['target']:.2f}x); "
                f"{_ratio(e['ratio_over_b'])} (target {e['ratio_over_b']['target']:.2f}x)",
            )
        )
    pr = bench["per_record"]
    rows.append(
        (
            "Submit, CPU per record",
            _median(pr["cpu_ms_per_record"], 2),
            f"minimal script {_median(pr['floor_cpu_ms_per_record'], 2)}",
            _ratio(pr["cpu_ratio"]),
        )
    )
    rows.append(
        (
            "AWS / Magic Hour calls per image (submit)",
            f"{sum(pr['aws_calls_per_image'].values()):g} / {sum(pr['magic_hour_calls_per_image'].values()):g}",
            f"minimum {sum(pr['minimum_aws_calls_per_image'].values()):g} / "
            f"{sum(pr['minimum_magic_hour_calls_per_image'].values()):g}",
            "",
        )
    )
    # Every latency row is shown: measured with a slot for each concurrent upload, or labelled as including the
    # wait for one (a run given fewer slots than uploads), or missing when the part did not run.
    waited = "" if _e2e_uncapped(bench) else " (uploads waited for a slot: includes the wait)"
    for mode, e in ((bench.get("e2e") or {}).get("modes") or {"webhooks": {}, "poll": {}}).items():
        measured = bool(e.get("images"))
        rows.append(
            (
                f"Latency added, {mode} (p50 / p95){waited if measured else ''}",
                f"{e['added_ms']['median']:.0f} / {e['added_p95_ms']:.0f} ms" if measured else "not measured",
                f"render {e['render_s']['median']:.1f} s" if measured else "",
                f"{e['throughput_vs_bound']:.2f} of the concurrency bound" if measured else "",
            )
        )
    for mode, e in ((bench.get("e2e") or {}).get("modes") or {}).items():
        if e.get("images"):
            rows.append(calls_row(mode, e))
    layer = bench["footprint"]["layer"]
    rows.append(("Layer, unzipped", f"{layer['unzipped_mb']:.2f} MB", f"target {layer['target_mb']:.0f} MB", ""))
    peak = max(e["peak_rss_mb"]["median"] for e in bench["cold_start"]["handlers"].values())
    rows.append(("Peak memory of a function at ready (largest)", f"{peak:.1f} MB", "", ""))
    w = bench["waiting"]
    rows.append(
        (
            "AWS cost per 1,000 images that each waited for a slot",
            f"${w['usd_per_1000_images']['waiting']:.4f}",
            f"${w['usd_per_1000_images']['no_wait']:.4f} when none waits",
            f"+${w['waiting_usd_per_1000_images']:.4f}",
        )
    )
    cost = bench["cost"]
    rows.append(
        (
            f"AWS cost per 1,000 images ({cost_source(cost)})",
            f"${cost['aws_total_usd_per_1000_images']:.4f}",
            f"Magic Hour: {cost['magic_hour_credits_per_1000_images']:,} credits ({_credits_source(cost)})",
            "",
        )
    )
    fixed = cost["fixed_usd_per_month"]
    rows.append(
        (
            "AWS cost per month of the stack standing idle (modelled)",
            f"${fixed['total']:.2f}",
            "whatever the number of images",
            "",
        )
    )
    lines = [
        f"Measured {bench['date']} on {m['nproc']} x {m['arch']}, Python {m['python']} (`bench/{BENCH}`). Medians; "
        "ratios are Cutout over its baseline with a 95 % interval.",
        "",
        "| figure | Cutout | baseline | ratio |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "AWS cost per 1,000 images by service (USD, us-east-1 list prices): "
        + ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in cost["usd_per_1000_images"].items())
        + f". Its inputs: {'; '.join(f'{k} {v}' for k, v in cost['sources'].items())}.",
        "",
        "Fixed AWS cost per month of a deployed stack with no uploads (USD, same price table; modelled): "
        + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in fixed["usd"].items())
        + f"; total {fixed['total']:.2f}. Assumptions: {' '.join(fixed['assumptions'])}",
    ]
    return "\n".join(lines)


def cost_source(cost: dict[str, Any]) -> str:
    """'measured' only when every input of the AWS per-image figure was: else which were modelled."""
    sources = {k: v for k, v in (cost.get("sources") or {}).items() if k != "magic_hour_credits"}
    modelled = [k for k, v in sources.items() if not str(v).startswith("measured")]
    return "measured" if sources and not modelled else "modelled: " + ", ".join(modelled or ["every input"])


def _credits_source(cost: dict[str, Any]) -> str:
    return str((cost.get("sources") or {}).get("magic_hour_credits", "modelled"))


def _soak_config(doc: dict[str, Any]) -> soak.SoakConfig:
    fields = {f.name for f in dataclasses.fields(soak.SoakConfig)}
    known = {k: v for k, v in doc.items() if k in fields}
    for name in ("results_path", "function_log"):
        known[name] = Path(known[name]) if known.get(name) else None
    if "fault_endpoints" in known:
        known["fault_endpoints"] = tuple(known["fault_endpoints"])
    return soak.SoakConfig(**known)


def soak_report(res: Results) -> str:
    doc = res.need(SOAK)
    text = soak.render(doc, _soak_config(doc["config"]), doc["elapsed_seconds"], doc.get("extra", {}))
    return f"`bench/{SOAK}`, as `make soak` printed it:\n\n```\n{text}\n```"


def _flood_config(doc: dict[str, Any]) -> flood.FloodConfig:
    fields = {f.name for f in dataclasses.fields(flood.FloodConfig)}
    known = {k: v for k, v in doc.items() if k in fields}
    known["modes"] = tuple(known.get("modes", ()))
    for name in ("results_path", "function_log"):
        known[name] = Path(known[name]) if known.get(name) else None
    return flood.FloodConfig(**known)


def flood_summary(res: Results) -> str:
    runs = [
        (f"`bench/{FLOOD}`", "queue", res.need(FLOOD)["modes"]["queue"]),
        (f"`bench/{FLOOD_QUEUE_RERUN}`", "queue", res.get(FLOOD_QUEUE_RERUN) and _flood_queue(res)),
        (f"`bench/{FLOOD}`", "reject", _flood_reject(res)),
    ]
    lines = [
        "| results | Magic Hour beyond the plan | uploads | of the plan's pace | lost | stuck | in a DLQ | paid twice "
        "| most open at once (plan) | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for source, mode, r in runs:
        if not r:
            continue
        f = r["flood"]
        failed = [name for name, ok in r["checks"].items() if not ok]
        lines.append(
            f"| {source} | {'queues' if mode == 'queue' else 'refuses (429)'} | {r['uploads']:,} | "
            f"{_ratio_text(r)} | {len(r['lost'])} | {len(r['non_terminal'])} | "
            f"{sum(r['dlq'].values())} | {len(r['duplicate_creates'])} | {f['max_concurrent_at_magic_hour']} "
            f"({f['plan_limit']}) | {'PASS' if r['passed'] else 'FAIL: ' + '; '.join(failed)} |"
        )
    return "\n".join(lines)


def flood_report(res: Results) -> str:
    cfg = _flood_config(res.need(FLOOD)["config"])
    text = flood.render(cfg, [_flood_queue(res), _flood_reject(res)])
    return (
        f"Queue mode from `bench/{FLOOD_QUEUE_RERUN}`, reject mode from `bench/{FLOOD}`, as the flood prints them:"
        f"\n\n```\n{text}\n```"
    )


def scale_tables(res: Results) -> str:
    return scale.tables(res.need(FLOOD), res.get(FLOOD_NO_FAULTS), res.get(BENCH))


RENDERERS: dict[str, Callable[[Results], str]] = {
    "readme-headline": readme_headline,
    "run-durations": run_durations,
    "bench-table": bench_table,
    "soak-report": soak_report,
    "flood-summary": flood_summary,
    "flood-report": flood_report,
    "scale-tables": scale_tables,
}


# -- regions ----------------------------------------------------------------------------------------------------
def render_text(text: str, res: Results) -> str:
    """``text`` with every figures region rewritten from ``res``; an unknown region name is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in RENDERERS:
            raise KeyError(f"unknown figures region {name!r} (known: {', '.join(RENDERERS)})")
        try:
            body = RENDERERS[name](res).rstrip()
        except Missing as missing:
            body = f"_Not measured with the current code: {missing}, then `make docs-figures`._"
        return f"{match.group(1)}{body}\n{match.group(4)}"

    return REGION.sub(replace, text)


def regions(text: str) -> list[str]:
    return [m.group("name") for m in REGION.finditer(text)]


def stale(root: Path = PROJECT_ROOT, bench_dir: Path | None = None) -> list[str]:
    """``file: region`` for each region whose text differs from what its results file says."""
    res = Results(bench_dir or root / "bench")
    out: list[str] = []
    for rel in DOCS:
        text = (root / rel).read_text(encoding="utf-8")
        fresh = render_text(text, res)
        if fresh == text:
            continue
        now = dict(zip(regions(text), [m.group("body") for m in REGION.finditer(text)], strict=True))
        new = dict(zip(regions(fresh), [m.group("body") for m in REGION.finditer(fresh)], strict=True))
        out += [f"{rel}: {name}" for name in now if now[name] != new.get(name)]
    return out


def outdated(root: Path = PROJECT_ROOT, bench_dir: Path | None = None) -> list[str]:
    """Why each results file the docs need could not be read: older than its producer's code, or absent."""
    res = Results(bench_dir or root / "bench")
    missing: list[str] = []
    for rel in DOCS:
        for match in REGION.finditer((root / rel).read_text(encoding="utf-8")):
            try:
                RENDERERS[match.group("name")](res)
            except Missing as why:
                missing.append(str(why))
    return sorted(set(missing) | set(res.outdated.values()))


def write(root: Path = PROJECT_ROOT) -> list[str]:
    res = Results(root / "bench")
    changed: list[str] = []
    for rel in DOCS:
        path = root / rel
        text = path.read_text(encoding="utf-8")
        fresh = render_text(text, res)
        if fresh != text:
            path.write_text(fresh, encoding="utf-8")
            changed.append(rel)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.docs_figures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a region is stale")
    args = parser.parse_args(argv)
    if args.check:
        behind, old = stale(), outdated()
        for item in behind:
            print(f"stale figures: {item} (run: python -m cutout_dev.docs_figures)", file=sys.stderr)
        for item in old:
            print(f"not from the current code: {item}", file=sys.stderr)
        return 1 if behind or old else 0
    for rel in write():
        print(f"rewrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
