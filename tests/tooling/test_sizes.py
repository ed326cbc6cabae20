"""cutout_dev.sizes: the module-size gate `make complex` and this suite apply to every code tree."""

from __future__ import annotations

from pathlib import Path

from cutout_dev.sizes import MAX_MODULE_LINES, TREES, measure


def test_a_module_over_the_limit_is_named_with_its_length(tmp_path: Path) -> None:
    # given a tree with one short module holding a 3-line function and one module over the limit
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "small.py").write_text("def f():\n    x = 1\n    return x\n", encoding="utf-8")
    (tmp_path / "pkg" / "big.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1), encoding="utf-8")
    # when it is measured
    largest = measure("pkg", root=tmp_path)
    # then the long module is the largest and over the limit, and the function is found with its length
    assert largest.module == "pkg/big.py" and largest.module_lines == MAX_MODULE_LINES + 1
    assert largest.over_limit == (f"pkg/big.py ({MAX_MODULE_LINES + 1} lines)",)
    assert largest.function == "pkg/small.py:1 f" and largest.function_lines == 3


def test_no_module_of_ours_is_over_the_limit() -> None:
    # given the domain, the handlers and the dev tooling / when measured / then every module keeps to the limit
    assert {tree: measure(tree).over_limit for tree in TREES} == dict.fromkeys(TREES, ())
