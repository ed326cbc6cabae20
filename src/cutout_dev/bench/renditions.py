"""Part 7: the renditions step measured on a 12-megapixel cutout (issue: rendering is free, so it must be cheap).

What is compared, in one process and one run (alternating, so drift on a noisy machine hits both):
* render — decode the cutout PNG once (``open_cutout``), then render every bench preset (compose + encode).
* floor  — decode the same PNG once with the same library and encode each preset's finished pixels once with the
  same settings: what any implementation must pay. render / floor (target <= 1.3x) is what our compositing adds.
  Per preset: its render against its encode alone.
* peak memory — in a fresh child: the peak RSS a decode + render-all adds over the process after its imports,
  against the decoded RGBA size (width x height x 4). Its bytes per pixel size the function's memory.
* cold start — in fresh children: importing the renditions code (the handler functions/renditions/app.py once it
  exists, else the domain modules it uses) against importing its libraries alone (<= 1.1x). CPU time, as part 1.

Figures are CPU time (``time.process_time``): on the shared 2-core machine wall time measures the neighbours.
The judge's pass over the decoded cutout is timed beside them (it runs once per cutout, not per preset).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cutout.renditions.judge import judge
from cutout.renditions.presets import PresetDocument
from cutout.renditions.render import CutoutSource, compose, encode, open_cutout, render

from cutout_dev.bench.stats import ratio, summary

ROOT = Path(__file__).resolve().parents[3]
RENDER_TARGET = 1.3
COLD_START_TARGET = 1.1
# A shop's set: the marketplace JPEG on white, storefront WebP sizes, the mask, a cropped PNG with a shadow.
BENCH_PRESETS: dict[str, Any] = {
    "presets": {
        "marketplace": {"format": "jpeg", "background": "#FFFFFF", "canvas": [2000, 2000], "fill": 0.85, "quality": 90},
        "storefront": {"format": "webp", "max_side": 1200},
        "thumb": {"format": "webp", "max_side": 400},
        "mask": {"format": "png", "output": "alpha"},
        "cropped": {"format": "png", "crop": True, "margin": "4%", "max_side": 1600, "shadow": True},
    }
}
FULL_SIZE = (4000, 3000)  # 12 megapixels
SMOKE_SIZE = (400, 300)

MEMORY_CHILD = r"""
import json, sys
from cutout.renditions.presets import PresetDocument
from cutout.renditions.render import open_cutout, render_all
from cutout.renditions.judge import judge
document = PresetDocument.parse(json.loads(sys.argv[2]))
def peak_kb():  # VmHWM: this process's own high-water mark (ru_maxrss keeps the parent's across exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
before = peak_kb()
with open(sys.argv[1], "rb") as f:
    data = f.read()
image = open_cutout(data)
judge(image)
rendered = render_all(image, list(document.presets.values()))
after = peak_kb()
print("BENCH_RESULT " + json.dumps({"before_kb": before, "after_kb": after, "size": image.size}))
"""

COLD_CHILD = r"""
import time
_t0 = time.process_time()
import sys
if sys.argv[1] == "handler":
    import app  # noqa: F401
else:
    for _m in [m for m in sys.argv[2].split(",") if m]:
        __import__(_m)
    if sys.argv[1] == "modules":
        import cutout.renditions.presets, cutout.renditions.render, cutout.renditions.judge  # noqa: F401
_t1 = time.process_time()
import json
print("BENCH_RESULT " + json.dumps({"import_cpu_ms": (_t1 - _t0) * 1000}))
"""
# The libraries the renditions function imports (the floor of its cold start): Pillow's modules the rendering
# uses, the AWS SDK and the Powertools every function loads. Until the handler exists, the subject is the same
# libraries plus the renditions modules: what our code adds on top of them.
LIBRARIES = (
    "PIL.Image",
    "PIL.ImageFilter",
    "boto3",
    "aws_lambda_powertools.logging.logger",
    "aws_lambda_powertools.metrics",
)


def sample_cutout(size: tuple[int, int]) -> bytes:
    """A photo-like cutout: a noisy, shaded subject (PNG compresses it as it compresses a photo) off-centre, with a
    soft edge, over garbage RGB at alpha 0."""
    from PIL import Image, ImageDraw, ImageFilter

    width, height = size
    noise = Image.effect_noise(size, 40).convert("L")
    shade = Image.linear_gradient("L").resize(size)
    rgb = Image.merge("RGB", (Image.blend(noise, shade, 0.6), shade, Image.blend(shade, noise, 0.3)))
    alpha = Image.new("L", size, 0)
    ImageDraw.Draw(alpha).ellipse((width * 0.12, height * 0.18, width * 0.68, height * 0.92), fill=255)
    alpha = alpha.filter(ImageFilter.GaussianBlur(max(1, width // 800)))
    rgb.putalpha(alpha)
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return out.getvalue()


def _cpu_ms(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return (time.process_time() - started) * 1000


def _child(script: str, *argv: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True, timeout=600, env=env
    )
    line = next(line for line in proc.stdout.splitlines() if line.startswith("BENCH_RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
    return result


def measure_render(data: bytes, runs: int) -> dict[str, Any]:
    """Render-all against decode + encode-each, alternating, with per preset figures."""
    from PIL import Image

    document = PresetDocument.parse(BENCH_PRESETS)
    presets = list(document.presets.values())
    image = open_cutout(data)
    finished = {p.name: compose(image, p) for p in presets}  # the floor encodes these (composed outside the clock)
    totals: dict[str, list[float]] = {"render": [], "floor": [], "decode": [], "judge": []}
    per: dict[str, dict[str, list[float]]] = {p.name: {"render": [], "encode": []} for p in presets}
    outputs: dict[str, dict[str, Any]] = {}
    for run in range(runs):
        for side in ("render", "floor") if run % 2 == 0 else ("floor", "render"):
            if side == "render":
                started = time.process_time()
                decoded = open_cutout(data)
                source = CutoutSource(decoded)  # as render_all shares the work between presets
                for p in presets:
                    before = time.process_time()
                    rendered = render(source, p)
                    per[p.name]["render"].append((time.process_time() - before) * 1000)
                    outputs[p.name] = {"width": rendered.width, "height": rendered.height, "bytes": len(rendered.body)}
                totals["render"].append((time.process_time() - started) * 1000)
                before = time.process_time()
                judge(decoded)
                totals["judge"].append((time.process_time() - before) * 1000)
            else:
                started = time.process_time()
                totals["decode"].append(_cpu_ms(lambda: Image.open(io.BytesIO(data)).load()))
                for p in presets:
                    before = time.process_time()
                    encode(finished[p.name], p)
                    per[p.name]["encode"].append((time.process_time() - before) * 1000)
                totals["floor"].append((time.process_time() - started) * 1000)
    return {
        "image": {"width": image.width, "height": image.height, "png_bytes": len(data)},
        "presets": BENCH_PRESETS["presets"],
        "render_all_cpu_ms": summary(totals["render"]),
        "floor_cpu_ms": summary(totals["floor"]),
        "decode_cpu_ms": summary(totals["decode"]),
        "judge_cpu_ms": summary(totals["judge"]),
        "ratio": ratio(totals["render"], totals["floor"], target=RENDER_TARGET),
        "per_preset": {
            name: {
                "render_cpu_ms": summary(times["render"]),
                "encode_cpu_ms": summary(times["encode"]),
                "ratio": ratio(times["render"], times["encode"]),
                **outputs[name],
            }
            for name, times in per.items()
        },
    }


def measure_memory(data: bytes) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as handle:
        handle.write(data)
    try:
        result = _child(MEMORY_CHILD, handle.name, json.dumps(BENCH_PRESETS), env=_child_env(None))
    finally:
        os.unlink(handle.name)
    width, height = result["size"]
    decoded = width * height * 4
    added = (result["after_kb"] - result["before_kb"]) * 1024
    return {
        "decoded_mb": round(decoded / 2**20, 1),
        "png_mb": round(len(data) / 2**20, 1),
        "peak_added_mb": round(added / 2**20, 1),
        "after_imports_mb": round(result["before_kb"] / 1024, 1),
        "peak_over_decoded": round(added / decoded, 2),
        "bytes_per_pixel": round(added / (width * height), 1),
    }


def _child_env(function_dir: Path | None) -> dict[str, str]:
    paths = [str(function_dir)] if function_dir else []
    paths += [str(ROOT / "layers" / "shared"), *sys.path[1:]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update({"PYTHONPATH": os.pathsep.join(p for p in paths if p), "AWS_DEFAULT_REGION": "us-east-1"})
    env.update({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true"})
    return env


def measure_cold_start(runs: int) -> dict[str, Any]:
    """The renditions code's import against its libraries' alone, fresh processes, alternating."""
    handler = ROOT / "functions" / "renditions" / "app.py"
    subject = "handler" if handler.is_file() else "modules"
    env = _child_env(handler.parent if handler.is_file() else None)
    env.update(_handler_env() if handler.is_file() else {})
    samples: dict[str, list[float]] = {"subject": [], "floor": []}
    for run in range(runs):
        for side in ("subject", "floor") if run % 2 == 0 else ("floor", "subject"):
            mode = subject if side == "subject" else "floor"
            samples[side].append(_child(COLD_CHILD, mode, ",".join(LIBRARIES), env=env)["import_cpu_ms"])
    return {
        "subject": "functions/renditions/app.py" if subject == "handler" else "the libraries + cutout.renditions",
        "floor": ", ".join(LIBRARIES),
        "import_cpu_ms": summary(samples["subject"]),
        "floor_cpu_ms": summary(samples["floor"]),
        "ratio": ratio(samples["subject"], samples["floor"], target=COLD_START_TARGET),
    }


def _handler_env() -> dict[str, str]:
    """The renditions function's environment (template names), pointed at nothing that listens."""
    return {
        "JOBS_TABLE": "cutout-jobs",
        "RENDITIONS_PREFIX": "renditions/",
        "PRESETS_PARAMETER": "/cutout/cutout/presets",
        "INPUT_PREFIX": "incoming/",
        "OUTPUT_PREFIX": "cutouts/",
        "EVENT_BUS_NAME": "default",
        "POWERTOOLS_SERVICE_NAME": "cutout",
        "POWERTOOLS_METRICS_NAMESPACE": "Cutout",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }


def run(*, smoke: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    size = SMOKE_SIZE if smoke else FULL_SIZE
    runs, cold_runs = (2, 2) if smoke else (5, 15)
    data = sample_cutout(size)
    log(f"  cutout {size[0]}x{size[1]} ({len(data) / 2**20:.1f} MB PNG), {runs} runs")
    result: dict[str, Any] = {"library": _library(), "runs": runs}
    result |= measure_render(data, runs)
    log("  peak memory")
    result["memory"] = measure_memory(data)
    log("  cold start")
    result["cold_start"] = measure_cold_start(cold_runs)
    result["pyvips"] = _pyvips(data, runs, result, log)
    return result


def _library() -> str:
    import PIL

    return f"Pillow {PIL.__version__}"


def _pyvips(data: bytes, runs: int, result: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """The same render-all with pyvips, when it is installed (it is not a dependency: the comparison that chose
    Pillow is in docs/renditions.md)."""
    try:
        from cutout_dev.bench import renditions_vips
    except ImportError as exc:
        return {"measured": False, "reason": f"pyvips not installed ({exc})"}
    log("  pyvips, the same presets")
    return renditions_vips.compare(data, BENCH_PRESETS, runs, result["render_all_cpu_ms"])


def _ms(s: dict[str, Any]) -> str:
    return "n/a" if s.get("median") is None else f"{s['median']:.0f} ms (IQR {s['iqr']:.0f})"


def _x(r: dict[str, Any]) -> str:
    if r.get("value") is None:
        return "n/a"
    lo, hi = r["ci95"]
    target = "" if r.get("target") is None else f" (<= {r['target']:.2f}x{'' if r['met'] else ', missed'})"
    return f"{r['value']:.2f}x [{lo:.2f}-{hi:.2f}]{target}"


def report_lines(res: dict[str, Any]) -> list[str]:
    """Part 7 in the console report."""
    image, memory, cold = res["image"], res["memory"], res["cold_start"]
    lines = [
        f"-- 7. renditions ({res['library']}; {image['width']}x{image['height']} cutout, "
        f"{image['png_bytes'] / 2**20:.1f} MB PNG; {len(res['presets'])} presets; {res['runs']} runs; CPU time)",
        f"  decode + render all {_ms(res['render_all_cpu_ms'])} vs decode + encode each {_ms(res['floor_cpu_ms'])}: "
        f"{_x(res['ratio'])}",
        f"  decode alone {_ms(res['decode_cpu_ms'])}; judge {_ms(res['judge_cpu_ms'])}",
    ]
    for name, p in res["per_preset"].items():
        lines.append(
            f"    {name:<12} {p['width']}x{p['height']} {p['bytes'] / 1024:,.0f} KB: render {_ms(p['render_cpu_ms'])}"
            f" vs encode {_ms(p['encode_cpu_ms'])}"
        )
    lines += [
        f"  peak memory added {memory['peak_added_mb']} MB = {memory['peak_over_decoded']}x the decoded "
        f"{memory['decoded_mb']} MB ({memory['bytes_per_pixel']} bytes/pixel; {memory['after_imports_mb']} MB "
        "after imports)",
        f"  cold start {cold['subject']} {_ms(cold['import_cpu_ms'])} vs {_ms(cold['floor_cpu_ms'])}: "
        f"{_x(cold['ratio'])}",
    ]
    vips = res["pyvips"]
    if vips.get("measured"):
        lines.append(
            f"  {vips['library']}: render all {_ms(vips['render_all_cpu_ms'])} CPU "
            f"({_ms(vips['render_all_wall_ms'])} wall) = {_x(vips['over_pillow_cpu'])} Pillow's CPU"
        )
    else:
        lines.append(f"  pyvips: {vips['reason']}")
    return lines


def report_rows(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Part 7 in the README/benchmarks table."""
    image, memory, cold = res["image"], res["memory"], res["cold_start"]
    megapixels = image["width"] * image["height"] / 1e6
    return [
        (
            f"Renditions: decode + {len(res['presets'])} presets, {megapixels:.1f} MP cutout (CPU)",
            _ms(res["render_all_cpu_ms"]),
            f"decode + encode each {_ms(res['floor_cpu_ms'])}",
            _x(res["ratio"]),
        ),
        (
            "Renditions: peak memory added",
            f"{memory['peak_added_mb']} MB",
            f"decoded RGBA {memory['decoded_mb']} MB",
            f"{memory['peak_over_decoded']}x",
        ),
        (
            f"Cold start renditions ({cold['subject']}, CPU)",
            _ms(cold["import_cpu_ms"]),
            _ms(cold["floor_cpu_ms"]),
            _x(cold["ratio"]),
        ),
    ]
