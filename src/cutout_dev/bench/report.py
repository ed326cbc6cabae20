"""Turn bench results into the console report and the README table (both from the same results.json)."""

from __future__ import annotations

from typing import Any

from cutout_dev.bench import renditions
from cutout_dev.bench.stats import fmt, fmt_ratio


def _r(r: dict[str, Any] | None) -> str:
    return "n/a" if not r or r.get("value") is None else f"{r['value']:.2f}x"


def _m(s: dict[str, Any] | None, digits: int = 0, unit: str = "ms") -> str:
    if not s or s.get("median") is None:
        return "n/a"
    return f"{s['median']:.{digits}f} {unit} (IQR {s['iqr']:.{digits}f})"


def _calls(d: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in d.items()) or "none"


def _cold_start_lines(cs: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines.append(f"-- 1. cold start ({cs['runs']} runs each; {cs['compared']}; judged on {cs['measure']})")
    for fn, e in cs["handlers"].items():
        lines.append(f"  {fn}:")
        lines.append(f"    ready, CPU   {fmt(e['ready_cpu_ms'])}")
        lines.append(f"      floor (a) {fmt(e['floor_ready_cpu_ms'])}  ratio {fmt_ratio(e['ratio'])}")
        lines.append(f"      floor (b) {fmt(e['floor_b_ready_cpu_ms'])}  ratio {fmt_ratio(e['ratio_over_b'])}")
        lines.append(f"      floor (b) / floor (a): {fmt_ratio(e['floor_b_over_a'])}")
        lines.append(
            f"    ready, wall  {fmt(e['ready_ms'])}  over (a) {fmt_ratio(e['wall_ratio_ready'])}, "
            f"over (b) {fmt_ratio(e['wall_ratio_ready_over_b'])}"
        )
        lines.append(
            f"    import   {fmt(e['import_ms'])}  floor (a) {fmt(e['floor_import_ms'])}  "
            f"ratio {fmt_ratio(e['import_ratio'])}"
        )
        lines.append(
            f"    process  {fmt(e['process_wall_ms'])}  floor (a) {fmt(e['floor_process_wall_ms'])}  "
            f"ratio {fmt_ratio(e['wall_ratio'])}"
        )
        for label, key in (("(a)", "importtime"), ("(b)", "importtime_over_b")):
            it = e[key]
            top = ", ".join(f"{x['module']} +{x['extra_ms']:.0f}" for x in it["top_extra_imports"][:5])
            lines.append(
                f"    -X importtime: +{it['extra_over_floor_ms']:.0f} ms over floor {label}; top extra (ms): {top}"
            )
            pk = ", ".join(f"{k} {v:.0f}" for k, v in it["extra_by_package_ms"].items())
            lines.append(f"      by package (self ms): {pk}")
    return lines


def _per_record_lines(pr: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines.append(
        f"-- 2. submit cost per record ({pr['records_per_variant']} records each, batches of {pr['batch_size']})"
    )
    lines.append(
        f"  wall  {fmt(pr['wall_ms_per_record'], digits=2)}  floor {fmt(pr['floor_wall_ms_per_record'], digits=2)}"
    )
    lines.append(f"        ratio {fmt_ratio(pr['ratio'])}")
    lines.append(
        f"  cpu   {fmt(pr['cpu_ms_per_record'], digits=2)}  floor {fmt(pr['floor_cpu_ms_per_record'], digits=2)}"
    )
    lines.append(f"        ratio {fmt_ratio(pr['cpu_ratio'])}")
    lines.append(f"  AWS calls/image:  cutout {_calls(pr['aws_calls_per_image'])}")
    lines.append(f"                    floor  {_calls(pr['floor_aws_calls_per_image'])}")
    lines.append(f"                    minimum {_calls(pr['minimum_aws_calls_per_image'])}")
    lines.append(
        f"  Magic Hour calls/image (emulator log): cutout {_calls(pr['magic_hour_calls_per_image'])}; "
        f"floor {_calls(pr['floor_magic_hour_calls_per_image'])}; "
        f"minimum {_calls(pr['minimum_magic_hour_calls_per_image'])}"
    )
    lines.append(f"  failures: {pr['failures']}; {pr['secrets_manager']}")
    return lines


def _e2e_lines(ee: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines.append(
        f"-- 3. end to end (render {ee['render_seconds']} s, concurrency {ee['concurrency']}, {ee['wall_seconds']} s)"
    )
    for mode, e in ee["modes"].items():
        if not e["images"]:
            lines.append(f"  {mode}: no images ({e['failures']} failures)")
            continue
        lines.append(
            f"  {mode}: {e['images']} images, {e['failures']} failures; added p50 {e['added_ms']['median']:.0f} ms "
            f"(IQR {e['added_ms']['iqr']:.0f}) p95 {e['added_p95_ms']:.0f} ms; "
            f"= {e['added_over_render']:.2f}x the render time"
        )
        lines.append(
            f"    before create {_m(e['added_before_create_ms'])}; after render {_m(e['added_after_render_ms'])}; "
            f"render {_m(e['render_s'], 2, 's')}"
        )
        lines.append(
            f"    throughput {e['throughput_per_s']:.3f}/s vs bound {e['bound_per_s']:.3f}/s "
            f"-> {e['throughput_vs_bound']:.2f} of the bound"
        )
        lines.append(f"    AWS calls/image (incl. local event-source polls): {_calls(e['aws_calls_per_image'])}")
        lines.append(f"    invocations/image: {_calls(e['invocations_per_image'])}")
    return lines


def _footprint_lines(fp: dict[str, Any], cs: dict[str, Any] | None) -> list[str]:
    lines: list[str] = []
    ly = fp["layer"]
    lines.append("-- 4. footprint")
    lines.append(
        f"  layer {ly['unzipped_mb']:.2f} MB unzipped (target <= {ly['target_mb']:.0f} MB: "
        f"{'met' if ly['met'] else 'MISSED'}), zipped "
        f"{(ly['zipped_bytes'] or 0) / 1048576:.2f} MB; source: {ly['source']}"
    )
    top = ", ".join(f"{k} {v / 1048576:.2f}" for k, v in list(ly["by_package_bytes"].items())[:6])
    lines.append(f"    largest (MB): {top}")
    lines.append(
        "  functions: " + ", ".join(f"{k} {v['unzipped_bytes'] / 1024:.1f} KB" for k, v in fp["functions"].items())
    )
    if cs:
        lines.append(
            "  peak RSS at ready (MB): "
            + ", ".join(
                f"{fn} {e['peak_rss_mb']['median']:.1f} (floor {e['floor_peak_rss_mb']['median']:.1f})"
                for fn, e in cs["handlers"].items()
            )
        )
    return lines


def _cost_lines(c: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines.append("-- 5. cost per 1,000 images")
    lines += [f"  {k}: {v}" for k, v in c["sources"].items()]
    lines.append("  " + ", ".join(f"{k} ${v:.4f}" for k, v in c["usd_per_1000_images"].items()))
    lines.append(
        f"  AWS total ${c['aws_total_usd_per_1000_images']:.4f} vs Magic Hour "
        f"{c['magic_hour_credits_per_1000_images']:,} credits"
    )
    fixed = c["fixed_usd_per_month"]
    lines.append(
        f"  fixed per month, idle (modelled): ${fixed['total']:.2f} ("
        + ", ".join(f"{k} {v:.2f}" for k, v in fixed["usd"].items())
        + ")"
    )
    return lines


def render(res: dict[str, Any]) -> str:
    lines: list[str] = []
    m = res["machine"]
    lines.append(f"== Cutout bench {res['date']} | {m['nproc']} x {m['arch']} {m['cpu']} | Python {m['python']}")
    cs = res.get("cold_start")
    if cs:
        lines += _cold_start_lines(cs)
    if res.get("per_record"):
        lines += _per_record_lines(res["per_record"])
    if res.get("e2e"):
        lines += _e2e_lines(res["e2e"])
    if res.get("footprint"):
        lines += _footprint_lines(res["footprint"], cs)
    lines += _cost_lines(res["cost"])
    lines += _waiting_lines(res.get("waiting"))
    if res.get("renditions"):
        lines += renditions.report_lines(res["renditions"])
    return "\n".join(lines)


def _waiting_lines(w: dict[str, Any] | None) -> list[str]:
    """Part 6: the calls of an upload that waited for a slot (dispatch included) against one that did not."""
    if not w:
        return []
    up, calls, inv = w["uploads"], w["aws_calls_per_image"], w["invocations_per_image"]
    totals, usd = w["aws_calls_total_per_image"], w["usd_per_1000_images"]
    added = {k: v for k, v in calls["added_by_waiting"].items() if v}
    return [
        f"-- 6. waiting for a slot (MaxJobsInFlight {w['max_jobs_in_flight']}, render {w['render_seconds']} s; "
        f"{up['no_wait']} uploads one at a time, then a burst of {up['burst']}: {up['waited']} waited)",
        f"  AWS calls/image, no wait ({totals['no_wait']:g}): {_calls(calls['no_wait'])}",
        f"  AWS calls/image, waited + dispatched ({totals['waiting']:g}): {_calls(calls['waiting'])}",
        f"    added by waiting: {_calls(added)}",
        f"  invocations/image: no wait {_calls(inv['no_wait'])}; waited {_calls(inv['waiting'])}",
        f"  AWS per 1,000 images: no wait ${usd['no_wait']:.4f}, every one waiting ${usd['waiting']:.4f}: "
        f"waiting costs ${w['waiting_usd_per_1000_images']:.4f} per 1,000 images ("
        + ", ".join(f"{k} {v:+.4f}" for k, v in w["waiting_usd_per_1000_images_by_line"].items() if v)
        + ")",
    ]


def _within(r: dict[str, Any]) -> str:
    lo, hi = r["ci95"]
    return f"{r['value']:.2f}x [{lo:.2f}-{hi:.2f}] (<= {r['target']:.2f}x{'' if r['met'] else ', missed'})"


def _cold_start_rows(cs: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """One row per handler: both floors measured in the same run, each ratio with its 95 % interval."""
    return [
        (
            f"Cold start `{fn}` (import + first-record clients, CPU)",
            _m(e["ready_cpu_ms"]),
            f"(a) {_m(e['floor_ready_cpu_ms'])}; (b) {_m(e['floor_b_ready_cpu_ms'])}",
            f"(a) {_within(e['ratio'])}; (b) {_within(e['ratio_over_b'])}",
        )
        for fn, e in cs["handlers"].items()
    ]


def _cold_start_notes(cs: dict[str, Any]) -> list[str]:
    """Where the time over each floor goes (`-X importtime`), and which targets were missed."""
    handlers = cs["handlers"]
    notes = [
        "Cold start floors: (a) `import boto3, requests` and the same clients; (b) (a) plus the Powertools modules "
        "the handler loads and its Logger and Metrics. (b) / (a): "
        + ", ".join(f"{fn} {_r(e['floor_b_over_a'])}" for fn, e in handlers.items())
        + "."
    ]
    for key, label, target in (("ratio", "(a)", cs["target"]), ("ratio_over_b", "(b)", cs["target_over_b"])):
        missed = [fn for fn, e in handlers.items() if e[key]["met"] is False]
        if missed:
            it_key = "importtime" if key == "ratio" else "importtime_over_b"
            worst = max((handlers[fn] for fn in missed), key=lambda e: e[key]["value"])
            top = ", ".join(f"`{x['module']}` +{x['extra_ms']:.0f} ms" for x in worst[it_key]["top_extra_imports"][:4])
            notes.append(
                f"Cold start over floor {label} misses {target:.2f}x for {', '.join(missed)}; imports the floor does "
                f"not pay (largest, `-X importtime` of one run): {top}."
            )
    return notes


def _per_record_rows(pr: dict[str, Any], notes: list[str]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    rows.append(
        (
            "Submit, per record (wall, moto + emulator)",
            _m(pr["wall_ms_per_record"], 2),
            _m(pr["floor_wall_ms_per_record"], 2),
            f"{_r(pr['ratio'])} (target <= {pr['target']:.2f}x{'' if pr['ratio']['met'] else ', missed'})",
        )
    )
    rows.append(
        (
            "Submit, per record (CPU in the function)",
            _m(pr["cpu_ms_per_record"], 2),
            _m(pr["floor_cpu_ms_per_record"], 2),
            _r(pr["cpu_ratio"]),
        )
    )
    rows.append(
        (
            "AWS / Magic Hour calls per image",
            f"{sum(pr['aws_calls_per_image'].values()):g} / {sum(pr['magic_hour_calls_per_image'].values()):g}",
            f"{sum(pr['minimum_aws_calls_per_image'].values()):g} / "
            f"{sum(pr['minimum_magic_hour_calls_per_image'].values()):g} (minimum)",
            "",
        )
    )
    if pr["ratio"]["met"] is False:
        notes.append("Per-record cost misses 1.25x; see the CPU ratio and the call counts for where the time goes.")
    return rows


def _e2e_rows(ee: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for mode, e in ee["modes"].items():
        if not e["images"]:
            continue
        rows.append(
            (
                f"Latency added, {mode} (p50 / p95)",
                f"{e['added_ms']['median']:.0f} / {e['added_p95_ms']:.0f} ms (IQR {e['added_ms']['iqr']:.0f})",
                f"render {e['render_s']['median']:.2f} s",
                f"{e['added_over_render']:.2f}x render",
            )
        )
        rows.append(
            (
                f"Throughput, {mode}",
                f"{e['throughput_per_s']:.3f} img/s",
                f"{e['bound_per_s']:.3f} img/s (bound: {ee['concurrency']} / render)",
                f"{e['throughput_vs_bound']:.2f} of bound",
            )
        )
    return rows


def _footprint_rows(fp: dict[str, Any], cs: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    ly = fp["layer"]
    rows.append(
        (
            "Layer size, unzipped",
            f"{ly['unzipped_mb']:.2f} MB",
            f"target <= {ly['target_mb']:.0f} MB",
            "met" if ly["met"] else "missed",
        )
    )
    if cs:
        for fn, e in cs["handlers"].items():
            rows.append(
                (
                    f"Peak RSS `{fn}` at ready",
                    _m(e["peak_rss_mb"], 1, "MB"),
                    _m(e["floor_peak_rss_mb"], 1, "MB"),
                    "",
                )
            )
    return rows


def _waiting_rows(w: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    totals, usd = w["aws_calls_total_per_image"], w["usd_per_1000_images"]
    added = ", ".join(f"{k} +{v:g}" for k, v in w["aws_calls_per_image"]["added_by_waiting"].items() if v > 0)
    rows.append(
        (
            "AWS calls per image that waited for a slot (dispatch included)",
            f"{totals['waiting']:g}",
            f"{totals['no_wait']:g} (no wait)",
            f"+{totals['waiting'] - totals['no_wait']:.1f}: {added}",
        )
    )
    rows.append(
        (
            "AWS cost of waiting per 1,000 images",
            f"${w['waiting_usd_per_1000_images']:.4f}",
            f"${usd['no_wait']:.4f} per 1,000 without waiting",
            f"${usd['waiting']:.4f} when every one waits",
        )
    )
    return rows


def _e2e_notes(ee: dict[str, Any], notes: list[str]) -> None:
    modes = {k: v for k, v in ee["modes"].items() if v["images"]}
    if any((v["throughput_vs_bound"] or 0) < 0.95 for v in modes.values()):
        parts = []
        for mode, v in modes.items():
            parts.append(
                f"{mode}: {v['added_before_create_ms']['median']:.0f} ms before the create, "
                f"{v['added_after_render_ms']['median']:.0f} ms after the render"
            )
        notes.append(
            "Throughput stays below the bound because each of the 5 slots is busy for render + added latency "
            f"(closed loop), not the render alone ({'; '.join(parts)}). Before the create it is "
            "S3 -> EventBridge -> SQS -> the submit (no batching window). After the render, webhooks cost a "
            "queue hop and the finalize; polling waits for the next scheduled check (first one 5 s after the "
            "create)."
        )


def _waiting_notes(w: dict[str, Any], notes: list[str]) -> None:
    up = w["uploads"]
    notes.append(
        "Waiting rows (part 6, `cutout_dev.bench.waiting`): the functions' AWS calls counted (botocore) on a "
        f"local stack with `MaxJobsInFlight` 1, {up['no_wait']} uploads one at a time against a burst of "
        f"{up['burst']} ({up['waited']} waited). A waiting upload adds its `waiting` write, the recheck snapshot "
        "and failed acquires (BatchGetItem), the dispatch message a finish sends and the submit invocation it "
        "starts, and that invocation's `by-status` query for the oldest. Priced by the same model as the cost "
        "row (SQS per message as send + receive + delete); the admission tick (once a minute) is not per image "
        "and not included."
    )


def readme_fragment(res: dict[str, Any]) -> str:
    """A Markdown table (one row per figure) with its date and machine, plus the notes on missed targets."""
    m = res["machine"]
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []
    cs = res.get("cold_start")
    if cs:
        rows += _cold_start_rows(cs)
        notes += _cold_start_notes(cs)
    pr = res.get("per_record")
    if pr:
        rows += _per_record_rows(pr, notes)
    ee = res.get("e2e")
    if ee:
        rows += _e2e_rows(ee)
    if res.get("footprint"):
        rows += _footprint_rows(res["footprint"], cs)
    w = res.get("waiting")
    if w:
        rows += _waiting_rows(w)
    if res.get("renditions"):
        rows += renditions.report_rows(res["renditions"])
    c = res["cost"]
    rows.append(
        (
            "AWS cost per 1,000 images",
            f"${c['aws_total_usd_per_1000_images']:.4f}",
            f"Magic Hour: {c['magic_hour_credits_per_1000_images']:,} credits",
            "",
        )
    )
    out = [
        f"Measured {res['date']} on {m['nproc']} x {m['arch']} ({m['cpu']}), Python {m['python']}, commit {m['commit']}"
        f"{' — SMOKE RUN, figures meaningless' if res.get('smoke') else ''}. Medians (IQR); ratios are Cutout / floor.",
        "",
        "| Figure | Cutout | Baseline | Ratio |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c_} | {d} |" for a, b, c_, d in rows),
        "",
        "Cost per 1,000 images (USD, us-east-1 list prices): "
        + ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in c["usd_per_1000_images"].items())
        + f"; next to {c['magic_hour_credits_per_1000_images']:,} Magic Hour credits.",
    ]
    if ee:
        _e2e_notes(ee, notes)
    if w:
        _waiting_notes(w, notes)
    if notes:
        out += ["", *(f"- {n}" for n in notes)]
    return "\n".join(out)
