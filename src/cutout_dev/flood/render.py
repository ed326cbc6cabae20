"""The flood's printed report, one block per plan mode (``docs_figures`` renders ``docs/scale.md`` with it too)."""

from __future__ import annotations

from typing import Any

from cutout_dev.flood.config import FloodConfig


def render(cfg: FloodConfig, reports: list[dict[str, Any]]) -> str:
    ok = {True: "OK", False: "FAIL"}
    faults = "the soak's fault mix" if cfg.faults else "no faults"
    lines = [
        f"Cutout flood — {cfg.uploads} uploads at once, plan limit {cfg.limit}, MaxJobsInFlight {cfg.in_flight}, "
        f"{cfg.render_seconds:g} s renders, {faults}, seed {cfg.seed}",
    ]
    for r in reports:
        f = r["flood"]
        t = f["throughput"]
        led = r["ledger"]
        lat = f["added_latency_last_ms"]
        lines += [
            "-" * 100,
            f"mode {r['mode']}: {r['uploads']} uploads PUT in {r['put_seconds']} s, all terminal after "
            f"{r['elapsed_seconds']} s",
            f"{'  terminal states':<40}{' · '.join(f'{k} {v}' for k, v in r['statuses'].items())}",
            f"{'  lost':<40}{len(r['lost'])}",
            f"{'  non-terminal':<40}{len(r['non_terminal'])}",
            f"{'  DLQ depths':<40}{' · '.join(f'{k} {v}' for k, v in r['dlq'].items())}",
            (
                f"{'  creates per upload':<40}"
                + ", ".join(f"{n}: {c}" for n, c in r["creates_histogram"].items())
                + f" (total {r['creates_total']}; ambiguous {len(r['ambiguous'])}, duplicates "
                f"{len(r['duplicate_creates'])}, unexpected {len(r['unexpected_creates'])})"
            ),
            (
                f"{'  credits: ledger vs table':<40}{led['emulator_net_credits']} vs {led['table_credits']} "
                f"(explained {led['explained_difference']})"
            ),
            (
                f"{'  max concurrent at Magic Hour':<40}{f['max_concurrent_at_magic_hour']} (MaxJobsInFlight "
                f"{f['max_jobs_in_flight']}, plan {f['plan_limit']}; emulator's max rendering "
                f"{f['max_rendering_reported_by_emulator']})"
            ),
            (
                f"{'  throughput (backlog window)':<40}{t.get('per_second')} /s vs bound {t['bound_per_second']} /s "
                f"= {t.get('ratio')} over {t.get('backlog_window_seconds')} s; overall "
                f"{t.get('overall_per_second')} /s; Magic Hour's renders took {t.get('measured_render_seconds')} s "
                f"(ratio at that: {t.get('ratio_at_measured_render')})"
            ),
            (
                f"{'  slots (admission control)':<40}"
                + (
                    f"max held {sl['max_held']}, mean {sl['mean_held_in_window']} in the window; slot-seconds by "
                    f"holder: {sl['slot_seconds_in_window_by_holder_outcome']}; effective limit min "
                    f"{sl['effective_limit_min']}"
                    if (sl := f.get("slots", {})).get("samples") and sl.get("max_held")
                    else "none seen"
                )
            ),
            (
                f"{'  slots held at the end / repaired':<40}{len(f['slots'].get('held_at_end', []))} / "
                f"{f['slots'].get('repairs', {}).get('repaired_metric_sum')} "
                f"{f['slots'].get('repairs', {}).get('reasons') or ''}"
            ),
            (
                f"{'  receives per message (max)':<40}"
                + " · ".join(f"{q} {v['max']}" for q, v in f["receives"].items())
                + f" (maxReceiveCount {max(f['max_receive_count'].values(), default=0)})"
            ),
            (
                f"{'  added latency, last ' + str(lat['n']):<40}p50 {lat['p50']} ms · p90 {lat['p90']} ms · "
                f"p95 {lat['p95']} ms · p99 {lat['p99']} ms"
            ),
            (
                f"{'    = upload->record + finished->stored':<40}p50 {f['added_before_last_ms']['p50']} + "
                f"{f['added_after_last_ms']['p50']} ms; not counted: the wait for a slot, p50 "
                f"{f['slot_wait_last_ms']['p50']} ms"
            ),
            (
                f"{'  slot hand-off (finish -> next create)':<40}"
                + (
                    f"p50 {h['p50_ms']} ms · p90 {h['p90_ms']} ms · mean {h['mean_ms']} ms over {h['n']}; "
                    f"{h['over_5s']} over 5 s"
                    if (h := f.get("slot_handoff", {})).get("n")
                    else "n/a"
                )
            ),
        ]
        lines += [f"  {ok[v]:<5}{name}" for name, v in r["checks"].items()]
        if r["invocation_errors"]:
            lines.append(f"  invocation errors: {r['invocation_errors']}")
    lines.append("RESULT: " + ("PASS" if all(r["passed"] for r in reports) else "FAIL"))
    return "\n".join(lines)
