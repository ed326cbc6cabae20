"""Part 4 (sizes): the layer and the functions, unzipped (and zipped), against the 10 MB layer target.

The layer is what ``layers/shared/requirements.txt`` installs plus the ``cutout`` package. Sources, best first:
* ``pip``  — ``pip install --target`` for the Lambda platform (manylinux2014_aarch64, CPython 3.13, wheels only),
  cached under ``bench/.cache/layer`` so later runs are offline;
* ``sam-build`` — ``.aws-sam/build/SharedLayer`` when ``make build`` has run (built for this host's platform);
* ``installed`` — the same distributions as installed in this venv (offline fallback; smoke mode).
Bytecode caches are excluded everywhere: the deployed layer ships none.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / "bench" / ".cache"
LAYER_TARGET_MB = 10.0
MB = 1024 * 1024


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]


def _sizes(root: Path) -> tuple[int, int, dict[str, int]]:
    """(unzipped bytes, zipped bytes, bytes per top-level entry) of a directory tree."""
    files = _files(root)
    per_top: dict[str, int] = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for p in files:
            rel = p.relative_to(root)
            zf.write(p, str(rel))
            top = rel.parts[0]
            top = re.sub(r"-[^-]+\.(dist-info|data)$", " (metadata)", top)
            per_top[top] = per_top.get(top, 0) + p.stat().st_size
    return sum(p.stat().st_size for p in files), len(buf.getvalue()), per_top


def _requirements() -> list[str]:
    lines = (ROOT / "layers" / "shared" / "requirements.txt").read_text().splitlines()
    return [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]


def _pip_layer(log: Any) -> Path | None:
    target = CACHE / "layer" / "python"
    stamp = CACHE / "layer" / "requirements.txt"
    wanted = "\n".join(_requirements())
    if stamp.exists() and stamp.read_text() == wanted and target.is_dir():
        return target
    log("  footprint: installing the layer's requirements for arm64 / cp313 into bench/.cache/layer (once)")
    target.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
        "--target", str(target), "--platform", "manylinux2014_aarch64", "--python-version", "3.13",
        "--implementation", "cp", "--only-binary=:all:", "--upgrade", *_requirements(),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        log(f"  footprint: pip install failed, falling back ({proc.stderr.strip()[-300:]})")
        return None
    stamp.write_text(wanted)
    return target


def _installed_layer() -> tuple[int, dict[str, int]]:
    """Bytes of the requirements' distributions (and their dependencies, boto3's excluded) as installed here."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    per: dict[str, int] = {}
    todo = [Requirement(r).name for r in _requirements()]
    runtime = {"boto3", "botocore", "s3transfer"}  # provided by the Lambda runtime, not shipped in the layer
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen or name in runtime:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        size = 0
        for f in dist.files or []:
            if "__pycache__" in f.parts or str(f).endswith(".pyc") or str(f).startswith(".."):
                continue
            p = Path(str(dist.locate_file(f)))
            if p.is_file():
                size += p.stat().st_size
        per[name] = size
        for req in dist.requires or []:
            r = Requirement(req)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    return sum(per.values()), per


def run(*, allow_network: bool = True, log: Any = print) -> dict[str, Any]:
    cutout_bytes, cutout_zip, _ = _sizes(ROOT / "layers" / "shared" / "cutout")
    layer: dict[str, Any]
    pip_dir = _pip_layer(log) if allow_network or (CACHE / "layer" / "python").is_dir() else None
    sam_dir = ROOT / ".aws-sam" / "build" / "SharedLayer" / "python"
    if pip_dir is not None:
        deps, deps_zip, per = _sizes(pip_dir)
        layer = {
            "source": "pip --target, manylinux2014_aarch64 cp313 wheels (bench/.cache/layer)",
            "unzipped_bytes": deps + cutout_bytes,
            "zipped_bytes": deps_zip + cutout_zip,
            "by_package_bytes": {**per, "cutout": cutout_bytes},
        }
    elif sam_dir.is_dir():
        total, zipped, per = _sizes(sam_dir)
        layer = {"source": ".aws-sam/build/SharedLayer", "unzipped_bytes": total, "zipped_bytes": zipped}
        layer["by_package_bytes"] = per
    else:
        total, per = _installed_layer()
        layer = {
            "source": "distributions installed in this venv (offline estimate, host platform)",
            "unzipped_bytes": total + cutout_bytes,
            "zipped_bytes": None,
            "by_package_bytes": {**per, "cutout": cutout_bytes},
        }
    layer["by_package_bytes"] = dict(sorted(layer["by_package_bytes"].items(), key=lambda kv: kv[1], reverse=True))
    layer["unzipped_mb"] = round(layer["unzipped_bytes"] / MB, 2)
    layer["target_mb"] = LAYER_TARGET_MB
    layer["met"] = layer["unzipped_mb"] <= LAYER_TARGET_MB
    functions = {}
    for fn_dir in sorted((ROOT / "functions").iterdir()):
        if fn_dir.is_dir():
            total, zipped, _ = _sizes(fn_dir)
            functions[fn_dir.name] = {"unzipped_bytes": total, "zipped_bytes": zipped}
    log(f"  layer {layer['unzipped_mb']:.2f} MB unzipped ({layer['source'].split(',')[0]}); functions "
        + ", ".join(f"{k} {v['unzipped_bytes'] / 1024:.1f} KB" for k, v in functions.items()))  # fmt: skip
    return {"layer": layer, "functions": functions}
