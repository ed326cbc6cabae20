"""``python -m cutout_dev.sizes``: the largest module and function of each code tree, and the module-size gate.

ruff already gates complexity (C901 at 12, PLR0911/0912/0915 on every tree but tests/); what it has no rule for is a
module's length, so this counts it: a module over MAX_MODULE_LINES fails (`make complex`, and a test in
tests/tooling). Hand-written because no well-kept tool reports module and function length per tree in ~60 lines
(radon's raw metrics count lines but not per function, and would be another dependency for one number).
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

from cutout_dev.local_stack.config import PROJECT_ROOT

TREES = ("layers/shared/cutout", "functions", "src/cutout_dev")
# "No module over ~400 lines": 420 leaves room for a docstring's growth without an arbitrary split.
MAX_MODULE_LINES = 420


@dataclass(frozen=True)
class Largest:
    tree: str
    module: str
    module_lines: int
    function: str
    function_lines: int
    over_limit: tuple[str, ...]


def measure(tree: str, root: Path = PROJECT_ROOT) -> Largest:
    """The longest module and function of `tree`, and every module over MAX_MODULE_LINES."""
    modules = sorted((root / tree).rglob("*.py"))
    lengths = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in modules}
    longest = max(modules, key=lambda p: lengths[p])
    best_fn, best_len = "", 0
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > best_len:
                    best_fn, best_len = f"{path.relative_to(root)}:{node.lineno} {node.name}", length
    over = tuple(f"{p.relative_to(root)} ({n} lines)" for p, n in lengths.items() if n > MAX_MODULE_LINES)
    return Largest(tree, str(longest.relative_to(root)), lengths[longest], best_fn, best_len, over)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutout_dev.sizes", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    failed = False
    for tree in TREES:
        m = measure(tree)
        print(
            f"{tree}: largest module {m.module} ({m.module_lines} lines); largest function {m.function} "
            f"({m.function_lines} lines)"
        )
        for line in m.over_limit:
            print(f"  over {MAX_MODULE_LINES} lines: {line}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
