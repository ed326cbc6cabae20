"""The operator's CLI installs alone: a wheel built from the project, installed with its ``cli`` extra into a clean
virtualenv (no moto, no pytest, no SAM CLI), gives a ``cutout`` that reads a deployed stack.

The "deployed" stack is the local one: template.yaml created through moto's CloudFormation, reached the way an
operator's shell reaches AWS (boto3's own resolution, here ``AWS_ENDPOINT_URL`` pointing at moto server).

Slow (a wheel build and a virtualenv install: about 1-3 minutes, most of it pip resolving the runtime libraries from
the configured index); it runs in ``make test``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cutout_dev.local_stack import LocalStack
from cutout_dev.local_stack.stack import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _source_tree(dest: Path) -> Path:
    """The files a clone has (tracked and new, ignored ones left out), copied: the build writes nothing here."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        src = PROJECT_ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _packages_on_disk() -> set[str]:
    """Every package of both roots: a directory holding an __init__.py."""
    found = set()
    for root, top in ((PROJECT_ROOT / "layers" / "shared", "cutout"), (PROJECT_ROOT / "src", "cutout_dev")):
        for init in (root / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(root).parts))
    return found


def test_the_wheel_installs_alone_and_its_cutout_reads_a_deployed_stack(
    tmp_path: Path, make_stack: Callable[..., LocalStack]
) -> None:
    tree = _source_tree(tmp_path / "clone")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(tree)],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("cutout-*.whl")
    in_wheel = {
        ".".join(Path(name).parent.parts) for name in zipfile.ZipFile(wheel).namelist() if name.endswith("__init__.py")
    }
    assert _packages_on_disk() <= in_wheel, f"left out of the wheel: {sorted(_packages_on_disk() - in_wheel)}"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, cutout = venv / "bin" / "python", venv / "bin" / "cutout"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{wheel}[cli]"],
        check=True,
        timeout=900,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    # Only the runtime libraries: none of the dev tooling came along.
    for dev_only in ("moto", "pytest", "PIL", "yaml"):
        probe = subprocess.run([str(python), "-c", f"import {dev_only}"], capture_output=True, check=False)
        assert probe.returncode != 0, f"{dev_only} is installed by the cli extra"

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CUTOUT_", "PYTHON"))}
    helped = subprocess.run([str(cutout), "--help"], capture_output=True, text=True, env=clean, check=False)
    assert helped.returncode == 0, helped.stderr
    for command in ("status", "jobs", "upload", "backfill", "retry", "doctor"):
        assert command in helped.stdout

    # A command of the dev tooling says in one line what to install (no traceback).
    local_up = subprocess.run(
        [str(cutout), "local", "up"], capture_output=True, text=True, env=clean, cwd=tmp_path, check=False
    )
    assert local_up.returncode == 1
    assert local_up.stderr.count("\n") == 1, local_up.stderr
    assert "pip install 'cutout[dev]'" in local_up.stderr
    assert "Traceback" not in local_up.stderr

    stack = make_stack()
    operator = {
        **clean,
        "AWS_ENDPOINT_URL": stack.endpoints.aws,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    status = subprocess.run(
        [str(cutout), "--stack", stack.config.stack_name, "--region", "us-east-1", "status", "--json"],
        capture_output=True,
        text=True,
        env=operator,
        cwd=tmp_path,
        check=False,
    )
    assert status.returncode in (0, 2), status.stderr  # 2 = "a person is needed" (e.g. no alarm history yet)
    doc = json.loads(status.stdout)
    assert doc["local"] is False
    assert doc["stack"] == stack.config.stack_name
    assert "counts" in doc
