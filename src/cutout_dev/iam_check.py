"""Every grant is needed: remove each statement (each action of a multi-action statement) of each function's role
in turn and show that a test fails without it.

    python -m cutout_dev.iam_check --reports .iam-report [--jobs 2] [--write docs/iam.md]

The evidence comes from the suite's own run: with ``CUTOUT_IAM_REPORT_DIR`` set, moto's IAM (local_stack/iam)
records, for every call a function made, which statement allowed it, and the tests record their durations. A grant
that was the only one allowing some call is *relied on* by that call's test; the quickest such test is then run
again with the grant removed (``CUTOUT_IAM_WITHOUT``) and must fail. A grant nothing relied on is reported as
unneeded (remove it), and a grant whose test still passes without it is reported too (the refusal is swallowed
somewhere, or the test does not look). Exit status 1 if either happens.

Statements that exist only under a parameter the local stack cannot exercise are listed in ``NOT_LOCAL`` with the
reason, and are reported rather than failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutout_dev.local_stack.iam.roles import WITHOUT_VARIABLE, role_id_of
from cutout_dev.local_stack.template import translate

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- iam-check:begin -->", "<!-- iam-check:end -->"

# (function, Sid) -> why no local test can show the statement is needed.
NOT_LOCAL: dict[tuple[str, str], str] = {
    ("SubmitFunction", "BucketKey"): "only with BucketKmsKeyArn set: moto's S3 does not call KMS for SSE-KMS objects",
    ("FinalizeFunction", "BucketKey"): "only with BucketKmsKeyArn set: moto's S3 does not call KMS for SSE-KMS objects",
}


@dataclass(frozen=True)
class Grant:
    function: str
    sid: str
    action: str
    sole_action: bool  # the statement has this one action: removing it removes the statement

    @property
    def without(self) -> str:
        return f"{self.function}:{self.sid}" if self.sole_action else f"{self.function}:{self.sid}:{self.action}"


@dataclass
class Verdict:
    grant: Grant
    test: str = ""
    calls: int = 0
    outcome: str = ""  # needed | unneeded | swallowed | not-local


def _statements(value: Any) -> Iterable[dict[str, Any]]:
    """A role's statements as written, looking inside ``Fn::If`` (a conditional statement is still a grant)."""
    for st in value if isinstance(value, list) else [value]:
        if isinstance(st, dict) and set(st) == {"Fn::If"}:
            yield from _statements([b for b in st["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b])
        elif isinstance(st, dict) and "Effect" in st:
            yield st


def template_grants(template: Path) -> list[Grant]:
    translated = translate(template, {})
    grants: list[Grant] = []
    for function_id in translated.functions:
        role = translated.resources[role_id_of(translated, function_id)].get("Properties") or {}
        for policy in role.get("Policies") or []:
            for st in _statements(policy["PolicyDocument"].get("Statement", [])):
                actions = st.get("Action", [])
                actions = actions if isinstance(actions, list) else [actions]
                grants.extend(Grant(function_id, str(st.get("Sid")), str(a), len(actions) == 1) for a in actions)
    return grants


def load_reports(directory: Path) -> tuple[dict[tuple[str, str, str], dict[str, int]], dict[str, float]]:
    """(function, sid, action) -> {test: calls it was the only grant of}; test -> duration (passed tests only)."""
    sole: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in directory.glob("*.json"):
        for principal, _policy, sid, action, tests in json.loads(path.read_text())["sole"]:
            for test, n in tests.items():
                if test:
                    sole[(principal, sid, action)][test] += n
    durations: dict[str, float] = {}
    for path in directory.glob("durations-*.tsv"):
        for line in path.read_text().splitlines():
            test, seconds, outcome = line.split("\t")
            if outcome == "passed":
                durations[test] = float(seconds)
    return sole, durations


def rerun(test: str, without: str, timeout: float) -> bool:
    """True if ``test`` fails with ``without`` removed from the roles."""
    env = {**os.environ, WITHOUT_VARIABLE: without}
    env.pop("CUTOUT_IAM_REPORT_DIR", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", test, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return True  # it did not pass: a refused call left the test waiting for what never happened
    return done.returncode != 0


def check(template: Path, reports: Path, jobs: int, timeout: float) -> list[Verdict]:
    sole, durations = load_reports(reports)
    verdicts: list[Verdict] = []
    todo: list[Verdict] = []
    for grant in template_grants(template):
        verdict = Verdict(grant)
        verdicts.append(verdict)
        if (grant.function, grant.sid) in NOT_LOCAL:
            verdict.outcome = "not-local"
            continue
        tests = {t: n for t, n in sole.get((grant.function, grant.sid, grant.action), {}).items() if t in durations}
        if not tests:
            verdict.outcome = "unneeded"
            continue
        verdict.test = min(tests, key=lambda t: (durations[t], t))
        verdict.calls = sum(tests.values())
        todo.append(verdict)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(lambda v: rerun(v.test, v.grant.without, timeout), todo)
        for verdict, failed in zip(todo, results, strict=True):
            verdict.outcome = "needed" if failed else "swallowed"
    return verdicts


def table(verdicts: list[Verdict]) -> str:
    rows = [
        "| function | statement | action | calls it alone allowed | test that fails without it |",
        "|---|---|---|---|---|",
    ]
    for v in verdicts:
        if v.outcome == "needed":
            result = f"`{v.test}`"
        elif v.outcome == "not-local":
            result = f"not exercised locally: {NOT_LOCAL[(v.grant.function, v.grant.sid)]}"
        elif v.outcome == "unneeded":
            result = "**none: nothing relied on it (remove it)**"
        else:
            result = f"**`{v.test}` still passes without it**"
        rows.append(f"| {v.grant.function} | {v.grant.sid} | `{v.grant.action}` | {v.calls} | {result} |")
    return "\n".join(rows)


def write_doc(path: Path, text: str) -> None:
    doc = path.read_text(encoding="utf-8")
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    path.write_text(doc[:start] + "\n" + text + "\n" + doc[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iam_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=Path, required=True, help="CUTOUT_IAM_REPORT_DIR of a suite run")
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per rerun")
    parser.add_argument("--write", type=Path, help="put the table into this markdown file (between its markers)")
    args = parser.parse_args(argv)
    verdicts = check(args.template, args.reports, args.jobs, args.timeout)
    text = table(verdicts)
    print(text)
    if args.write:
        write_doc(args.write, text)
    bad = [v for v in verdicts if v.outcome in ("unneeded", "swallowed")]
    counts = {o: sum(v.outcome == o for v in verdicts) for o in ("needed", "not-local", "unneeded", "swallowed")}
    print(f"iam-check: {len(verdicts)} grants: " + ", ".join(f"{n} {o}" for o, n in counts.items()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
