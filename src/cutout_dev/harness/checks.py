"""A named check with its verdict: what the harnesses' analyses return, and how a report records them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """One pass/fail judgement of a run: `name` is the line the report prints, `detail` says what was seen."""

    name: str
    ok: bool
    detail: str = ""


def record(report: dict[str, Any], results: Iterable[CheckResult]) -> None:
    """Add `results` to the report's ``checks`` ({name: ok}, in order) and re-judge ``passed`` over all of them."""
    checks = dict(report.get("checks", {}))
    checks.update({r.name: r.ok for r in results})
    report["checks"] = checks
    report["passed"] = all(checks.values())
