"""Robust summaries for noisy measurements: medians with IQR/MAD, and ratios of medians with a bootstrap interval."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from typing import Any


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (q in [0, 1]); tolerant of tiny samples, unlike statistics.quantiles."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, quartiles, IQR and MAD — the spread figures that survive the odd slow outlier on a busy machine."""
    if not values:
        return {"n": 0, "median": None, "p25": None, "p75": None, "iqr": None, "mad": None, "min": None, "max": None}
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values)
    p25, p75 = quantile(values, 0.25), quantile(values, 0.75)
    return {
        "n": len(values),
        "median": round(med, digits),
        "p25": round(p25, digits),
        "p75": round(p75, digits),
        "iqr": round(p75 - p25, digits),
        "mad": round(mad, digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def ratio(
    subject: Sequence[float], baseline: Sequence[float], *, target: float | None = None, resamples: int = 2000
) -> dict[str, Any]:
    """Ratio of medians with a 95 % bootstrap interval (each side resampled independently; fixed seed)."""
    if not subject or not baseline or statistics.median(baseline) == 0:
        return {"value": None, "ci95": [None, None], "target": target, "met": None}
    value = statistics.median(subject) / statistics.median(baseline)
    rng = random.Random(20251124)  # reproducible interval for the same samples
    boots: list[float] = []
    for _ in range(resamples):
        s = statistics.median(rng.choices(subject, k=len(subject)))
        b = statistics.median(rng.choices(baseline, k=len(baseline)))
        if b:
            boots.append(s / b)
    lo, hi = quantile(boots, 0.025), quantile(boots, 0.975)
    return {
        "value": round(value, 3),
        "ci95": [round(lo, 3), round(hi, 3)],
        "target": target,
        "met": None if target is None else value <= target,
    }


def fmt(s: dict[str, Any], unit: str = "ms", digits: int = 1) -> str:
    """`12.3 ms (IQR 1.2, MAD 0.5, n=15)` for a summary()."""
    if s.get("median") is None:
        return "n/a"
    return f"{s['median']:.{digits}f} {unit} (IQR {s['iqr']:.{digits}f}, MAD {s['mad']:.{digits}f}, n={s['n']})"


def fmt_ratio(r: dict[str, Any]) -> str:
    if r.get("value") is None:
        return "n/a"
    lo, hi = r["ci95"]
    text = f"{r['value']:.2f}x [95% CI {lo:.2f}-{hi:.2f}]"
    if r.get("target") is not None:
        text += f" target <= {r['target']:.2f}x: {'met' if r['met'] else 'MISSED'}"
    return text
