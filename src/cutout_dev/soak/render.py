"""The soak's printed report, from its JSON report (``docs_figures`` renders ``docs/soak.md`` with it too)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from cutout_dev.harness.slots import explain
from cutout_dev.soak.config import SoakConfig


def _fmt_counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _pct(rate: float) -> str:
    return f"{rate * 100:g} %"


def _slot_lines(report: dict[str, Any], cfg: SoakConfig) -> list[str]:
    """Admission's slot accounting: held at the end, and each kind of repair with what it means."""
    sl = report.get("slots")
    if sl is None:
        return []
    ok = {True: "OK", False: "FAIL"}
    held = sl["held_at_end"]
    lines = [
        f"{'slots held at the end':<36}{len(held)} of {cfg.max_jobs_in_flight:<5}"
        f"{ok[report['checks']['no slot held at the end']]}"
        + (" " + ", ".join(f"{h['slot']} {h['holder'][:12]} ({h['holder_outcome']})" for h in held) if held else ""),
        f"{'slots repaired by reconciliation':<36}{sl['repaired']:<10}"
        f"(SlotsRepaired metric sum {sl['repaired_metric_sum']})  "
        f"{ok[report['checks']['every slot repair has a documented reason']]}",
    ]
    for reason, n in sorted(sl["reasons"].items(), key=lambda kv: -kv[1]):
        outcomes = Counter(r["holder_outcome"] for r in sl["repairs"] if r["reason"] == reason)
        lines.append(f"  {reason} {n}: {sl['explained'].get(reason) or explain(reason)}")
        created = Counter(f"{r['holder_creates']} create(s)" for r in sl["repairs"] if r["reason"] == reason)
        lines.append(
            f"    holders ended: {_fmt_counts(dict(outcomes.most_common()))}; at Magic Hour (emulator log): "
            f"{_fmt_counts(dict(created.most_common()))}"
        )
    return lines


def render(report: dict[str, Any], cfg: SoakConfig, elapsed: float, extra: dict[str, Any]) -> str:
    ok = {True: "OK", False: "FAIL"}
    led = report["ledger"]
    pct = _pct
    hist = report["creates_histogram"]
    lines = [
        f"Cutout fault-injection soak — seed {cfg.seed}, {report['uploads']} uploads, {elapsed:.0f} s",
        (
            f"injected: Magic Hour 5xx {pct(cfg.rate_5xx)}, 429 {pct(cfg.rate_429)}, resets {pct(cfg.rate_reset)} "
            f"(on {'+'.join(cfg.fault_endpoints)}); render errors {pct(cfg.render_error_rate)}; latency spikes "
            f"{pct(cfg.latency_spike_rate)} x {cfg.latency_spike_seconds:g} s; canceled {pct(cfg.cancel_rate)}; "
            f"never complete {pct(cfg.never_complete_rate)}; webhooks dropped {pct(cfg.drop_webhook_rate)}, "
            f"duplicated {pct(cfg.duplicate_webhook_rate)}; expired download URLs {pct(cfg.expired_download_rate)}"
        ),
        (
            f"          S3 events delivered twice: {report['injected']['duplicate_events']}; "
            f"workers killed between create and DynamoDB update: {report['injected']['killed_workers']}"
        ),
        "-" * 100,
        f"{'uploads':<36}{report['uploads']}",
        f"{'terminal states':<36}{_fmt_counts(report['statuses'])}",
        f"{'  error codes':<36}{_fmt_counts(report['error_codes'])}",
        f"{'dead-letter queues (before redrive)':<36}{_fmt_counts(extra.get('dlq_before_redrive', report['dlq']))}",
        f"{'dead-letter queues (final)':<36}{_fmt_counts(report['dlq'])}",
        f"{'jobs only the forced sweep ended':<36}{len(extra.get('swept', [])):<10}"
        f"{ok[not extra.get('swept')]}  ({extra.get('sweeper', 'sweep not needed')})",
        f"{'lost':<36}{len(report['lost']):<10}{ok[not report['lost']]}",
        f"{'non-terminal':<36}{len(report['non_terminal']):<10}{ok[not report['non_terminal']]}",
        (
            f"{'creates per upload':<36}"
            + ", ".join(f"{n} create(s): {c}" for n, c in hist.items())
            + f"  (total creates {report['creates_total']})"
        ),
        (
            f"{'  outside ambiguous cases':<36}duplicates {len(report['duplicate_creates'])}, "
            f"unexpected {len(report['unexpected_creates'])}, foreign {len(report['foreign_creates'])}  "
            f"{ok[report['checks']['creates per upload == 1 outside listed ambiguous cases']]}"
        ),
        f"{'ambiguous cases (listed below)':<36}{len(report['ambiguous'])}",
        (
            f"{'emulator credit ledger (net)':<36}{led['emulator_net_credits']:<10}"
            f"(debits {led['emulator_debits']} - refunds {led['emulator_refunds']})"
        ),
        (
            f"{'credits in the jobs table':<36}{led['table_credits']:<10}"
            f"difference {led['emulator_net_credits'] - led['table_credits']} = explained "
            f"{led['explained_difference']} (unadopted ambiguous creates) + unexplained "
            f"{led['emulator_net_credits'] - led['table_credits'] - led['explained_difference']}  {ok[led['ok']]}"
        ),
    ]
    lines += _slot_lines(report, cfg)
    if "iam" in report:
        checked = ", ".join(
            f"{f.removesuffix('Function').lower()} {n}" for f, n in sorted(report["iam"]["checked"].items())
        )
        refused = sum(report["iam"]["refused"].values())
        lines.append(f"{'AWS calls checked against IAM':<36}{checked}; refused {refused}  {ok[not refused]}")
        lines.extend(f"  REFUSED {r['principal']} {r['operation']}: {r['why']}" for r in report["iam"]["refusals"])
    lines.append("-" * 100)
    if report["ambiguous"]:
        lines.append("ambiguous cases:")
        for a in report["ambiguous"]:
            adopted = "adopted" if a["adopted"] else "not adopted"
            lines.append(
                f"  {a['job_id'][:12]} {a['key']!r:<38} {a['status']:<9} creates {a['creates']}  {adopted:<11} "
                f"{a['why']}"
            )
    for title, rows in (
        ("LOST", report["lost"]),
        ("NON-TERMINAL", report["non_terminal"]),
        ("DUPLICATE CREATES", report["duplicate_creates"]),
        ("UNEXPECTED CREATE COUNTS", report["unexpected_creates"]),
        ("LEDGER MISMATCHES", led["unexplained"]),
        ("LEDGER EXPLAINED", led["explained"]),
    ):
        if rows:
            lines.append(f"{title}:")
            lines.extend(f"  {json.dumps(r, default=str)}" for r in rows)
    if report["foreign_creates"]:
        lines.append("CREATES FOR NO UPLOAD: " + ", ".join(report["foreign_creates"]))
    if extra.get("swept"):
        lines.append("SWEPT BY THE HARNESS:")
        lines.extend(f"  {json.dumps(r, default=str)}" for r in extra["swept"])
    lines.extend(f"FAILED CHECK: {name}" for name, passed in report["checks"].items() if not passed)
    lines.append("RESULT: " + ("PASS" if report["passed"] else "FAIL"))
    return "\n".join(lines)
