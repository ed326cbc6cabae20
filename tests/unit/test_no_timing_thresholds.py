"""No test judges by the clock: the rule kept by reading the test tree (ast).

Flagged, in any test file:

* an ``assert`` that orders (<, <=, >, >=) a timing value against anything: a value read from the clock
  (``time.monotonic()``, ``time.time()``, ``time.perf_counter()``, their ``_ns`` forms), a name assigned from an
  expression that reads it (``elapsed = time.monotonic() - t0``), or a name that says it is one (``elapsed``,
  ``duration``, ``took``, ``gap``/``gaps``) — a figure like that belongs to ``make bench``, not to a verdict;
* a ``time.sleep(...)`` that is a statement of its own outside a loop, followed in the same block by an
  ``assert``: a fixed sleep that hopes something happened in the meantime.

Allowed (the pattern to use): a bounded poll — ``tests.support.waiting.wait_until(condition, what)``, or a
``while``/``for`` loop that sleeps between checks of a condition and fails at its deadline saying what did not
happen; a clock the test controls (an injected ``clock``, a recorded ``sleep``). A deadline bounds a hang; it is
never what is asserted. Comparing wall-clock *stamps* for order (``before <= stamp <= time.time()``) is not a
threshold: both sides are instants, no number of seconds is judged — write it with a name that is not one of the
duration names above.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
CLOCK_CALLS = {"monotonic", "time", "perf_counter", "monotonic_ns", "time_ns", "perf_counter_ns"}
DURATION_NAMES = {"elapsed", "duration", "took", "gap", "gaps"}
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _is_clock_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_CALLS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
    )


def _reads_clock(node: ast.AST, tainted: set[str]) -> bool:
    for sub in ast.walk(node):
        if _is_clock_call(sub):
            return True
        if isinstance(sub, ast.Name) and (sub.id in tainted or sub.id.lower() in DURATION_NAMES):
            return True
    return False


def _tainted_names(func: ast.AST) -> set[str]:
    """Names assigned (anywhere in the function) from an expression holding a clock-minus-something difference."""
    tainted: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            is_difference = isinstance(value, ast.BinOp) and isinstance(value.op, ast.Sub)
            if is_difference and _reads_clock(value, tainted):
                tainted.add(node.targets[0].id)
    return tainted


def _threshold_asserts(func: ast.AST) -> list[int]:
    tainted = _tainted_names(func)
    lines = []
    for node in ast.walk(func):
        if not isinstance(node, ast.Assert):
            continue
        for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            operands = [cmp.left, *cmp.comparators]
            durations = [o for o in operands if _duration(o, tainted)]
            if durations and any(isinstance(op, ORDERING) for op in cmp.ops):
                lines.append(node.lineno)
    return lines


def _duration(node: ast.AST, tainted: set[str]) -> bool:
    """A seconds figure: a clock difference, a name holding one, or a duration name (not a bare instant)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
        return _reads_clock(node, tainted)
    if isinstance(node, ast.Name):
        return node.id in tainted or node.id.lower() in DURATION_NAMES
    if isinstance(node, ast.Subscript | ast.Call | ast.Attribute):
        return any(isinstance(n, ast.Name) and n.id.lower() in DURATION_NAMES for n in ast.walk(node))
    return False


def _is_sleep(stmt: ast.stmt) -> bool:
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "sleep"
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "time"
    )


def _hopeful_sleeps(tree: ast.AST) -> list[int]:
    """A sleep statement outside any loop with an assert after it in the same block."""
    lines: list[int] = []

    def visit(body: list[ast.stmt], in_loop: bool) -> None:
        for i, stmt in enumerate(body):
            asserts_after = any(isinstance(n, ast.Assert) for later in body[i + 1 :] for n in ast.walk(later))
            if _is_sleep(stmt) and not in_loop and asserts_after:
                lines.append(stmt.lineno)
            loop = in_loop or isinstance(stmt, ast.While | ast.For | ast.AsyncFor)
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list):
                    blocks = [h.body for h in inner if isinstance(h, ast.ExceptHandler)] or [inner]
                    for block in blocks:
                        if block and isinstance(block[0], ast.stmt):
                            # a function defined inside starts afresh: it is not in the loop around it
                            visit(block, loop and not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree.body if isinstance(tree, ast.Module) else [], in_loop=False)
    return lines


def findings(root: Path = TESTS) -> list[str]:
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(root.parent)
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            if func.name.startswith("test"):
                out += [f"{rel}:{line}: assert on a duration" for line in _threshold_asserts(func)]
        out += [f"{rel}:{line}: fixed sleep before an assert" for line in _hopeful_sleeps(tree)]
    return sorted(set(out))


def test_no_test_asserts_a_timing_threshold_or_sleeps_and_hopes() -> None:
    found = findings()
    assert found == [], "\n".join(found)


def test_the_rule_catches_what_it_names(tmp_path: Path) -> None:
    # given a test file with each banned shape and each allowed one
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shapes.py").write_text(
        "import time\n"
        "def test_banned():\n"
        "    t0 = time.monotonic()\n"
        "    elapsed = time.monotonic() - t0\n"
        "    assert elapsed < 5\n"  # line 5
        "    assert time.monotonic() - t0 < 5\n"  # line 6
        "    time.sleep(1)\n"  # line 7
        "    assert True\n"
        "def test_allowed():\n"
        "    deadline = time.monotonic() + 5\n"
        "    while time.monotonic() < deadline:\n"
        "        time.sleep(0.1)\n"
        "    before = int(time.time())\n"
        "    assert before <= time.time()\n",
        encoding="utf-8",
    )
    # then exactly the banned lines are named
    assert findings(tmp_path / "tests") == [
        "tests/test_shapes.py:5: assert on a duration",
        "tests/test_shapes.py:6: assert on a duration",
        "tests/test_shapes.py:7: fixed sleep before an assert",
    ]
