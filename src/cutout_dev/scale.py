"""Scale on paper: what 100,000 and 1,000,000 uploads cost and how long they take, from a flood run's counts.

    python -m cutout_dev.scale                      # reads bench/flood-results.json, prints docs/scale.md's tables
    python -m cutout_dev.scale --results other.json --render-seconds 4

Cost: Magic Hour credits (5 per image; render errors are refunded, so this is the ceiling) and the AWS bill from the
AWS calls and Lambda invocations *measured per upload* in the flood (waiting, dispatch and slot work included),
priced by ``cutout_dev.bench.cost`` (the bench's prices and SQS/DynamoDB model). Duration: the plan is the bound,
``uploads x render time / plan limit`` (Little's law), divided by the throughput ratio the flood measured against
that bound. Business is "unlimited" in Magic Hour's pricing page; a number has to be assumed to get a time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cutout.magic_hour import CREDITS_PER_IMAGE

from cutout_dev.bench.cost import model
from cutout_dev.flood import DEFAULT_RESULTS

VOLUMES = (100_000, 1_000_000)
# Creator 3 and Pro 5 are published (magichour-api.md); Business is "unlimited" there: 10 is an assumption.
PLANS = {"Creator": 3, "Pro": 5, "Business (10 assumed)": 10}
RENDER_SECONDS = 4.0  # Magic Hour's typical background-remover render (the bench's reference)


def cost_per_image(mode: dict[str, Any]) -> dict[str, Any]:
    """The bench's cost model fed with the flood's per-upload measurements."""
    shaped = {
        "modes": {
            "webhooks": {
                "images": mode["uploads"],
                "aws_calls_per_image": mode["aws_calls_per_upload"],
                "invocations_per_image": mode["invocations_per_upload"],
                "invocation_ms": mode["invocation_ms"],
            }
        }
    }
    return model(shaped, None)


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:,.1f} h" if hours < 48 else f"{hours / 24:,.1f} days"


def tables(results: dict[str, Any], render_seconds: float = RENDER_SECONDS) -> str:
    lines: list[str] = []
    modes = results["modes"]
    costs = {name: cost_per_image(m) for name, m in modes.items()}
    # The dearer behaviour prices the table (reject mode pays for refused creates' retries, queue mode does not).
    worst = max(costs, key=lambda n: costs[n]["aws_total_usd_per_1000_images"])
    usd_per_1000 = costs[worst]["aws_total_usd_per_1000_images"]
    ratios = [m["flood"]["throughput"].get("ratio") for m in modes.values()]
    efficiency = min([r for r in ratios if r] or [1.0])
    lines.append(
        "AWS per 1,000 images: " + ", ".join(f"{n} ${c['aws_total_usd_per_1000_images']:.4f}" for n, c in costs.items())
    )
    lines.append(f"(table priced at the dearer, {worst}; throughput ratio used for durations: {efficiency:.2f})")
    lines.append("")
    header = "| uploads | Magic Hour credits | AWS (USD) | " + " | ".join(PLANS) + " |"
    lines += [header, "|" + "---|" * (3 + len(PLANS))]
    for n in VOLUMES:
        times = [_duration(n * render_seconds / limit / efficiency) for limit in PLANS.values()]
        credits = n * CREDITS_PER_IMAGE
        lines.append(f"| {n:,} | {credits:,} | ${usd_per_1000 * n / 1000:,.2f} | " + " | ".join(times) + " |")
    lines.append("")
    lines.append("Per upload, measured in the flood (functions' calls only):")
    ops = sorted({op for m in modes.values() for op in m["aws_calls_per_upload"]})
    lines += ["| call | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for op in ops:
        lines.append(
            f"| {op} | " + " | ".join(f"{m['aws_calls_per_upload'].get(op, 0):.2f}" for m in modes.values()) + " |"
        )
    invs = sorted({fn for m in modes.values() for fn in m["invocations_per_upload"]})
    for fn in invs:
        lines.append(
            f"| {fn} invocations | "
            + " | ".join(f"{m['invocations_per_upload'].get(fn, 0):.2f}" for m in modes.values())
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="a flood run's JSON")
    parser.add_argument("--render-seconds", type=float, default=RENDER_SECONDS)
    args = parser.parse_args(argv)
    if not args.results.is_file():
        print(f"no flood results at {args.results}: run `make flood` first", file=sys.stderr)
        return 1
    print(tables(json.loads(args.results.read_text(encoding="utf-8")), args.render_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
