"""What may import what (docs/design.md, "What may import what"), read from the source with ast, nothing imported.

Every import counts, the deferred ones inside functions and those under TYPE_CHECKING included: a rule that holds
only at module level would let a layer reach upwards at run time. Each rule is also run on a planted violation, so
a rule that cannot fail is caught too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "layers" / "shared" / "cutout"
FUNCTIONS = ROOT / "functions"
EMULATOR = ROOT / "src" / "cutout_dev" / "emulator"

# The domain's sub-packages, each with the others it may import (besides itself). Lower layers never import upper.
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "runtime": {"domain"},
    "aws": {"domain", "runtime"},
    "magic_hour": {"domain", "runtime", "aws"},
    "store": {"domain", "runtime", "aws"},
    "admission": {"domain", "runtime", "aws", "store", "magic_hour"},
    "renditions": {"domain", "runtime", "aws", "store"},
    "use_cases": {"domain", "runtime", "aws", "magic_hour", "store", "admission", "renditions"},
}
# What the Lambda code may depend on: the standard library, the runtime's boto3 and the layer's requirements.
THIRD_PARTY = {"boto3", "botocore", "requests", "urllib3", "aws_lambda_powertools"}
# The imaging library: only these modules of the domain may import it (the renditions function's own layer has it).
IMAGING = {"PIL"}
IMAGING_MODULES = {"renditions/render.py", "renditions/judge.py"}
# The functions on the paid path: what they import, however indirectly, never reaches an imaging module.
PAID_PATH = ("submit", "webhook", "poll", "finalize", "sweeper")
# Type stubs, imported under TYPE_CHECKING only (never at run time).
TYPE_STUBS = {
    "mypy_boto3_dynamodb",
    "mypy_boto3_s3",
    "mypy_boto3_sqs",
    "mypy_boto3_events",
    "mypy_boto3_secretsmanager",
}


def imported(path: Path) -> Iterator[str]:
    """Every absolute module name `path` imports (``from x import y`` gives x and x.y: y may be a module)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def domain_violations(root: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        package = parts[0] if len(parts) > 1 else None
        for name in imported(path):
            top = name.split(".")[0]
            where = f"{path.relative_to(root)} imports {name}"
            if top == "cutout":
                sub = name.split(".")[1] if "." in name else None
                if sub is None or sub not in ALLOWED:
                    continue  # `from cutout.x import y` also yields cutout.x.y; the package itself is checked
                if package is None or (sub != package and sub not in ALLOWED[package]):
                    found.append(where)
            elif top in {"functions", "cutout_dev", "tests"}:
                found.append(where)
            elif top in IMAGING:
                if path.relative_to(root).as_posix() not in IMAGING_MODULES:
                    found.append(f"{where} (only {', '.join(sorted(IMAGING_MODULES))} may use the imaging library)")
            elif top not in sys.stdlib_module_names and top not in THIRD_PARTY | TYPE_STUBS:
                found.append(f"{where} (a dependency the layer does not install)")
    return found


def handler_violations(root: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(root.glob("*/app.py")):
        for name in imported(path):
            top = name.split(".")[0]
            ours = top in {"cutout", "functions", "cutout_dev", "app"} or (root / top).is_dir()
            if ours and top != "cutout":
                found.append(f"{path.relative_to(root)} imports {name}")
    return found


def _module_file(name: str, domain: Path) -> Path | None:
    """cutout.a.b -> domain/a/b.py (or its package's __init__.py); None for a name that is no module of ours."""
    parts = name.split(".")[1:]
    candidates = [domain.joinpath(*parts).with_suffix(".py"), domain.joinpath(*parts, "__init__.py")]
    return next((c for c in candidates if parts and c.is_file()), None)


def reached(entry: Path, domain: Path) -> dict[Path, Path]:
    """Every domain module ``entry`` imports, directly or through others, each with the module that imports it."""
    seen: dict[Path, Path] = {}
    todo = [entry]
    while todo:
        path = todo.pop()
        for name in imported(path):
            module = _module_file(name, domain) if name.split(".")[0] == "cutout" else None
            if module is not None and module not in seen:
                seen[module] = path
                todo.append(module)
    return seen


def paid_path_violations(functions: Path, domain: Path) -> list[str]:
    """A function on the paid path whose import graph reaches an imaging module or the imaging library."""
    found: list[str] = []
    for name in PAID_PATH:
        entry = functions / name / "app.py"
        graph = {entry: entry, **reached(entry, domain)}
        for module, by in graph.items():
            relative = module.relative_to(domain).as_posix() if module.is_relative_to(domain) else str(module)
            if relative in IMAGING_MODULES or any(n.split(".")[0] in IMAGING for n in imported(module)):
                found.append(f"{name} reaches {relative} (imported by {by.name})")
    return found


def emulator_violations(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)} imports {name}"
        for path in sorted(root.rglob("*.py"))
        for name in imported(path)
        if name.split(".")[0] == "cutout"
    ]


def test_the_domain_keeps_its_layers_and_its_dependencies() -> None:
    assert {p.name for p in DOMAIN.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED)
    assert domain_violations(DOMAIN) == []


def test_the_domain_packages_are_empty_so_a_cold_start_loads_only_what_it_uses() -> None:
    inits = [DOMAIN / "__init__.py", *(DOMAIN / p / "__init__.py" for p in ALLOWED)]
    # A docstring at most: nothing that runs, nothing re-exported.
    bodies = {str(p.relative_to(DOMAIN)): ast.parse(p.read_text(encoding="utf-8")).body for p in inits}
    assert {name: [ast.dump(stmt) for stmt in body if not _is_docstring(stmt)] for name, body in bodies.items()} == {
        name: [] for name in bodies
    }


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def test_handlers_import_the_domain_only_and_never_each_other() -> None:
    assert handler_violations(FUNCTIONS) == []


def test_the_paid_path_never_loads_the_imaging_library() -> None:
    assert all((FUNCTIONS / name / "app.py").is_file() for name in PAID_PATH)
    assert paid_path_violations(FUNCTIONS, DOMAIN) == []


def test_a_planted_imaging_import_on_the_paid_path_is_found(tmp_path: Path) -> None:
    domain, functions = tmp_path / "cutout", tmp_path / "functions"
    _plant(domain, "renditions/render.py", "from PIL import Image\n")
    _plant(domain, "renditions/presets.py", "import json\n")
    _plant(domain, "use_cases/finalize.py", "def later():\n    from cutout.renditions import render\n")
    for name in PAID_PATH:
        _plant(functions, f"{name}/app.py", "from cutout.renditions.presets import PresetDocument\n")
    _plant(
        functions,
        "finalize/app.py",
        "from cutout.renditions.presets import PresetDocument\nfrom cutout.use_cases.finalize import Finalizer\n",
    )
    assert paid_path_violations(functions, domain) == [
        "finalize reaches renditions/render.py (imported by finalize.py)"
    ]
    assert domain_violations(domain) == []
    _plant(domain, "renditions/presets.py", "import PIL.Image\n")  # the module every function may import
    assert len(paid_path_violations(functions, domain)) == len(PAID_PATH) + 1
    assert any("only renditions/judge.py" in line for line in domain_violations(domain))


def test_the_emulator_knows_nothing_of_the_domain() -> None:
    assert emulator_violations(EMULATOR) == []


def _plant(root: Path, relative: str, source: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("domain/models.py", "from cutout.store.job_store import JobStore\n"),  # vocabulary reaching the table
        ("store/job_store.py", "def f():\n    from cutout.use_cases import submit\n"),  # deferred, still upwards
        (
            "aws/secrets.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cutout.admission.control import slots\n",
        ),
        ("use_cases/submit.py", "import cutout_dev.soak\n"),  # dev tooling
        ("runtime/config.py", "import yaml\n"),  # not in the layer
    ],
)
def test_a_planted_domain_violation_is_found(tmp_path: Path, relative: str, source: str) -> None:
    assert domain_violations(_plant(tmp_path, relative, source)) != []


def test_a_planted_handler_or_emulator_violation_is_found(tmp_path: Path) -> None:
    _plant(tmp_path / "functions", "submit/app.py", "from cutout.use_cases import submit\n")
    _plant(tmp_path / "functions", "poll/app.py", "from functions.submit import app\n")
    assert handler_violations(tmp_path / "functions") == [
        "poll/app.py imports functions.submit",
        "poll/app.py imports functions.submit.app",
    ]
    _plant(tmp_path / "emulator", "engine.py", "from cutout.domain.models import JobStatus\n")
    assert emulator_violations(tmp_path / "emulator") != []
