"""Scale on paper: what 100,000 and 1,000,000 uploads cost and how long they take, from flood runs' counts.

    python -m cutout_dev.scale      # reads bench/flood-results.json (+ bench/flood-nofaults.json, bench/results.json)

Cost: Magic Hour credits (5 per image; render errors are refunded, so this is the ceiling) and the AWS bill from the
AWS calls and Lambda invocations *measured per upload* in a flood (waiting, dispatch and slot work included),
priced by ``cutout_dev.bench.cost`` (the bench's prices and its SQS/DynamoDB model) plus what that model does not
price: admission control's BatchGetItem reads every slot and the limit item (N + 1 strongly consistent reads).
The table is priced from the dearest flood run (with the soak's faults, retries are included). What waiting
adds is the no-fault flood (every upload waited) minus the bench's trickle (no upload waited).

Duration: the plan is the bound, ``uploads x render time / plan limit`` (Little's law), shown at the bound and at the
lowest throughput ratio the flood with faults measured against it on this machine. Business is "unlimited" on
Magic Hour's pricing page: a number has to be assumed to get a time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cutout.magic_hour.client import CREDITS_PER_IMAGE

from cutout_dev.bench.cost import DYNAMODB_RRU_USD, model
from cutout_dev.flood import DEFAULT_RESULTS
from cutout_dev.local_stack.stack import PROJECT_ROOT

NO_FAULTS_RESULTS = PROJECT_ROOT / "bench" / "flood-nofaults.json"
BENCH_RESULTS = PROJECT_ROOT / "bench" / "results.json"
VOLUMES = (100_000, 1_000_000)
# Creator 3 and Pro 5 are Magic Hour's published plan concurrencies; Business is "unlimited" there: 10 is an assumption.
PLANS = {"Creator (3)": 3, "Pro (5)": 5, "Business (10, assumed)": 10}
RENDER_SECONDS = 4.0  # Magic Hour's typical background-remover render (the bench's reference)


def _slots(results: dict[str, Any]) -> int:
    cfg = results.get("config", {})
    return int(cfg.get("max_jobs_in_flight") or cfg.get("limit") or 3)


def usd_per_1000(calls: dict[str, float], invocations: dict[str, float], ms: dict[str, Any], slots: int) -> float:
    """The bench's model for these per-upload counts, plus admission's multi-item reads."""
    shaped = {
        "modes": {
            "webhooks": {
                "images": 1,
                "aws_calls_per_image": calls,
                "invocations_per_image": invocations,
                "invocation_ms": ms,
            }
        }
    }
    base = float(model(shaped, None)["aws_total_usd_per_1000_images"])
    batch_reads = calls.get("dynamodb.BatchGetItem", 0) * (slots + 1) * DYNAMODB_RRU_USD * 1000
    return base + batch_reads


def mode_usd(mode: dict[str, Any], slots: int) -> float:
    return usd_per_1000(mode["aws_calls_per_upload"], mode["invocations_per_upload"], mode["invocation_ms"], slots)


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.1f} days"


def tables(
    results: dict[str, Any],
    no_faults: dict[str, Any] | None = None,
    bench: dict[str, Any] | None = None,
    render_seconds: float = RENDER_SECONDS,
) -> str:
    modes = results["modes"]
    # The flood runs a large plan so that the plan, not the machine, sets its pace; a real plan's acquire reads
    # N + 1 slot items for its own N. Priced at the largest plan in the table (whichever is smaller).
    slots = min(_slots(results), max(PLANS.values()))
    costs = {f"{name} mode": mode_usd(m, slots) for name, m in modes.items()}
    if no_faults:
        nf_slots = min(_slots(no_faults), max(PLANS.values()))
        costs.update({f"{n} mode, no faults": mode_usd(m, nf_slots) for n, m in no_faults["modes"].items()})
    worst = max(costs, key=lambda n: costs[n])
    per_1000 = costs[worst]
    # The duration at the lowest ratio a flood *with* the soak's faults reached (the realistic case); a flood that
    # measured none leaves that column "not measured", never the ideal 1.0.
    ratios = [r for r in (m["flood"]["throughput"].get("ratio") for m in modes.values()) if r]
    ratio = min(ratios) if ratios else None
    at_ratio = f"at {ratio:.2f} of it (measured)" if ratio else "at the measured pace: not measured"
    lines = [
        "AWS per 1,000 uploads in the floods (measured calls and invocations, priced by the bench's model): "
        + ", ".join(f"{n} ${c:.4f}" for n, c in costs.items())
        + f" (the table uses the dearest, {worst})",
        "",
        f"Durations are modelled: uploads x a {render_seconds:g} s render (assumed: Magic Hour's typical background "
        "removal, not measured here) / the plan's limit; the second figure divides by the throughput ratio the "
        "floods measured.",
        "",
        "| uploads | Magic Hour credits (modelled) | AWS | "
        + " | ".join(f"{p}: at the bound / {at_ratio}" for p in PLANS)
        + " |",
        "|---|---|---|" + "---|" * len(PLANS),
    ]
    for n in VOLUMES:
        times = [
            f"{_duration(n * render_seconds / limit)} / "
            + (_duration(n * render_seconds / limit / ratio) if ratio else "not measured")
            for limit in PLANS.values()
        ]
        lines.append(f"| {n:,} | {n * CREDITS_PER_IMAGE:,} | ${per_1000 * n / 1000:,.2f} | " + " | ".join(times) + " |")
    if no_faults and bench:
        trickle = bench.get("e2e", {}).get("modes", {}).get("webhooks", {})
        if trickle.get("aws_calls_per_image"):
            waited = mode_usd(next(iter(no_faults["modes"].values())), min(_slots(no_faults), max(PLANS.values())))
            base = usd_per_1000(
                trickle["aws_calls_per_image"], trickle.get("invocations_per_image", {}), trickle["invocation_ms"], 0
            )
            lines += [
                "",
                f"What waiting and dispatch add, per 1,000 uploads: ${waited - base:.4f} "
                f"(every upload waited, no faults: ${waited:.4f}; the bench's trickle, none waited: ${base:.4f}).",
            ]
    lines += ["", "Per upload, measured (the functions' calls only):"]
    columns = {f"{n} (faults)": m for n, m in modes.items()}
    if no_faults:
        columns.update({f"{n} (no faults)": m for n, m in no_faults["modes"].items()})
    ops = sorted({op for m in columns.values() for op in m["aws_calls_per_upload"]})
    lines += ["| call | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for op in ops:
        lines.append(
            f"| {op} | " + " | ".join(f"{m['aws_calls_per_upload'].get(op, 0):.2f}" for m in columns.values()) + " |"
        )
    for fn in sorted({fn for m in columns.values() for fn in m["invocations_per_upload"]}):
        lines.append(
            f"| {fn} invocations | "
            + " | ".join(f"{m['invocations_per_upload'].get(fn, 0):.2f}" for m in columns.values())
            + " |"
        )
    return "\n".join(lines)


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="a flood run with faults (make flood)")
    parser.add_argument("--no-faults-results", type=Path, default=NO_FAULTS_RESULTS, help="a flood run without")
    parser.add_argument("--bench", type=Path, default=BENCH_RESULTS, help="make bench's results (the trickle)")
    parser.add_argument("--render-seconds", type=float, default=RENDER_SECONDS)
    args = parser.parse_args(argv)
    results = _load(args.results)
    if results is None:
        print(f"no flood results at {args.results}: run `make flood` first", file=sys.stderr)
        return 1
    print(tables(results, _load(args.no_faults_results), _load(args.bench), args.render_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
