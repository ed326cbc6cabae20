"""Every grant is needed: remove each statement (each action of a multi-action statement) of each function's role
in turn and show that a test fails without it.

    python -m cutout_dev.iam_check --reports .iam-report [--jobs 2] [--timeout 90] [--write docs/iam.md]

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
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutout_dev.local_stack.iam.roles import WITHOUT_VARIABLE, role_id_of
from cutout_dev.local_stack.template import translate

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- iam-check:begin -->", "<!-- iam-check:end -->"
PLAN_VARIABLE = "CUTOUT_IAM_WITHOUT_PLAN"  # tests/conftest.py: {test: grant} removed while that test runs
RESULTS_VARIABLE = "CUTOUT_IAM_RESULTS_DIR"  # tests/conftest.py: each test phase's outcome
MIN_TIMEOUT_SECONDS = 15.0
CHEAP_SECONDS = 10.0  # a candidate this cheap is always worth running now rather than waiting a round for
TRIES = 3  # tests tried per grant, cheapest first, before a grant whose refusal nothing notices is reported

# (function, Sid) -> why no local test can show the statement is needed.
NOT_LOCAL: dict[tuple[str, str], str] = {
    ("SubmitFunction", "BucketKey"): "only with BucketKmsKeyArn set: moto's S3 does not call KMS for SSE-KMS objects",
    ("FinalizeFunction", "BucketKey"): "only with BucketKmsKeyArn set: moto's S3 does not call KMS for SSE-KMS objects",
    ("FinalizeFunction", "OutputBucketKey"): (
        "only with OutputBucketKmsKeyArn set: moto's S3 does not call KMS for SSE-KMS objects"
    ),
    (
        "RenditionsFunction",
        "BucketKey",
    ): "only with BucketKmsKeyArn set: moto's S3 does not call KMS for SSE-KMS objects",
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
    """(function, sid, action) -> {test: calls it was the only grant of}; test -> seconds with its fixtures
    (tests that passed only)."""
    sole: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in directory.glob("*.json"):
        for principal, _policy, sid, action, tests in json.loads(path.read_text())["sole"]:
            for test, n in tests.items():
                if test:
                    sole[(principal, sid, action)][test] += n
    seconds: dict[str, float] = defaultdict(float)
    passed: set[str] = set()
    for test, when, duration, outcome in _phases(directory, "durations"):
        seconds[test] += duration
        if when == "call" and outcome == "passed":
            passed.add(test)
    return sole, {t: seconds[t] for t in passed}


def _phases(directory: Path, name: str) -> Iterable[tuple[str, str, float, str]]:
    for path in directory.glob(f"{name}-*.tsv"):
        for line in path.read_text(encoding="utf-8").splitlines():
            test, when, duration, outcome = line.split("\t")
            yield test, when, float(duration), outcome


def run_round(plan: dict[str, dict[str, Any]], jobs: int, timeout: float, scratch: Path) -> set[str]:
    """Run every test of ``plan`` ({test: {"without": grant, "timeout": seconds}}) in one pytest session; the
    tests that did not pass (a failure, an error in a fixture, a timeout while waiting for what a refused call
    never did)."""
    scratch.mkdir(parents=True, exist_ok=True)
    plan_path = scratch / "plan.json"
    results = scratch / "results"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    env = {**os.environ, PLAN_VARIABLE: str(plan_path), RESULTS_VARIABLE: str(results)}
    env.pop("CUTOUT_IAM_REPORT_DIR", None)
    env.pop(WITHOUT_VARIABLE, None)
    command = [sys.executable, "-m", "pytest", *sorted(plan), "-q", "-p", "no:cacheprovider"]
    command += [f"--timeout={timeout:.0f}", *(["-n", str(jobs)] if jobs > 1 and len(plan) > 1 else [])]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):  # 1: some tests failed; anything else: the session itself went wrong
        raise RuntimeError(f"iam-check: pytest exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    passed: set[str] = set()
    failed: set[str] = set()
    for test, when, _duration, outcome in _phases(results, "results"):
        if outcome == "failed":
            failed.add(test)
        elif when == "call" and outcome == "passed":
            passed.add(test)
    for path in results.glob("*.tsv"):
        path.unlink()
    return set(plan) - (passed - failed)  # a test that did not report a passing call did not pass


def _in_the_background(test: str) -> bool:
    """Whether `test`'s calls come from the local stack's pollers (tests/e2e), whose timing varies from run to run:
    a call such a test made once may not be made in its rerun, so its verdict on a grant is not repeatable. A
    direct-call test makes its calls in its own thread, the same ones every run; those are tried first."""
    return test.startswith("tests/e2e/")


def check(template: Path, reports: Path, jobs: int, timeout: float, tries: int = TRIES) -> list[Verdict]:
    """Every grant against the cheapest tests that relied on it, up to ``tries`` of them, until one fails.

    The reruns are grouped into rounds, one pytest session each (its start-up is most of a short test's cost);
    within a round each test removes one grant only, so a grant whose cheapest test is taken uses its next one."""
    sole, durations = load_reports(reports)
    verdicts: list[Verdict] = []
    candidates: dict[int, list[str]] = {}
    for grant in template_grants(template):
        verdict = Verdict(grant)
        verdicts.append(verdict)
        if (grant.function, grant.sid) in NOT_LOCAL:
            verdict.outcome = "not-local"
            continue
        relied = {t: n for t, n in sole.get((grant.function, grant.sid, grant.action), {}).items() if t in durations}
        verdict.calls = sum(relied.values())
        if not relied:
            verdict.outcome = "unneeded"
            continue
        candidates[len(verdicts) - 1] = sorted(relied, key=lambda t: (_in_the_background(t), durations[t], t))[:tries]
    scratch = Path(tempfile.mkdtemp(prefix="iam-check-"))
    rounds = 0
    while candidates:
        plan: dict[str, dict[str, Any]] = {}
        chosen: dict[int, str] = {}
        for index, tests in candidates.items():
            # The cheapest free candidate, unless it costs much more than the grant's cheapest (taken by another
            # grant this round): then wait a round rather than run a flood for what a 2 s test shows.
            affordable = max(CHEAP_SECONDS, 2 * durations[tests[0]])
            test = next((t for t in tests if t not in plan and durations[t] <= affordable), None)
            if test is not None:
                # A few times the test's usual length: a refusal that leaves it waiting fails it in seconds.
                limit = min(timeout, max(MIN_TIMEOUT_SECONDS, 3 * durations[test]))
                plan[test] = {"without": verdicts[index].grant.without, "timeout": round(limit)}
                chosen[index] = test
        started = time.monotonic()
        failed = run_round(plan, jobs, timeout, scratch)
        rounds += 1
        print(f"iam-check: round {rounds}: {len(plan)} test(s), {time.monotonic() - started:.1f} s", file=sys.stderr)
        for index, test in chosen.items():
            verdict = verdicts[index]
            verdict.test = test
            candidates[index].remove(test)
            if test in failed:
                verdict.outcome = "needed"
            elif not candidates[index]:
                verdict.outcome = "swallowed"
            if verdict.outcome:
                del candidates[index]
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
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per rerun test (pytest-timeout)")
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
