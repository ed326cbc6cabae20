"""Part 1 (and the RSS half of part 4): each handler's cold start in a fresh process against two floors.

What is compared, per handler:
* subject — ``import app`` (the function's module: Powertools, the domain package, settings, module-level objects;
  Lambda's INIT phase) **plus** what the handler builds on its first record without touching the network: the
  boto3 clients ``cutout.aws.aws_clients`` creates lazily (Secrets Manager's included) and the Magic Hour HTTP
  session. Lazy creation moves that cost from INIT to the first invocation; a user waits for both.
* floor (a) — ``import boto3, requests`` and the same clients created directly: what any Python implementation
  of the same function pays before it can make its first call.
* floor (b) — floor (a) plus the Powertools modules the handler loads (found by a run of the handler, so the
  floor follows the code) and the Logger and Metrics every handler builds. Subject / floor (b) is what our own
  code adds; floor (b) / floor (a) is what the Powertools utilities we chose cost.

All run the same tiny child script (so interpreter start-up and the script itself cancel out), with the
function's environment and ``AWS_ENDPOINT_URL`` pointed at a closed loopback port: client creation is offline,
and nothing could reach AWS if it were not. Timing is taken inside the child with ``perf_counter``; the parent also
records the process wall time. Runs alternate subject, (a), (b) forwards and backwards so drift on a noisy
machine hits all three.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutout_dev.bench.stats import ratio, summary

ROOT = Path(__file__).resolve().parents[3]
COLD_START_TARGET = 1.15  # the handler over floor (a)
OWN_CODE_TARGET = 1.05  # the handler over floor (b): what our own code adds
ENTRY_MODULE = "app"

# What each handler creates on its first record (read from functions/*/app.py and the domain package):
#   aws:<svc>  cutout.aws.aws_clients.<svc>()          secrets  cutout.aws.secrets' SecretsProvider (shared client)
#   magic_hour cutout.magic_hour.client.MagicHourClient    http     a requests.Session (finalize's download)
HANDLER_CLIENTS: dict[str, tuple[str, ...]] = {
    "submit": ("aws:s3", "aws:dynamodb", "aws:sqs", "secrets", "magic_hour"),
    "webhook": ("aws:dynamodb", "aws:sqs", "secrets"),
    "poll": ("aws:dynamodb", "aws:sqs", "secrets", "magic_hour"),
    "finalize": ("aws:s3", "aws:dynamodb", "aws:events", "http"),
    "sweeper": ("aws:dynamodb", "aws:sqs", "aws:events", "secrets", "magic_hour"),
}

# The child: measured from its first line, so interpreter start-up (identical for both) is excluded from the
# in-process figures. Only builtins are imported before the clock starts; json/resource only after it stops.
CHILD = r"""
import time
_t0, _c0 = time.perf_counter(), time.process_time()
import os, sys
_mode, _clients = sys.argv[1], [c for c in sys.argv[2].split(",") if c]
if _mode == "handler":
    import app  # noqa: F401  (functions/<name>/app.py via PYTHONPATH, as Lambda imports it)
    _t1, _c1 = time.perf_counter(), time.process_time()
    from cutout.aws import aws_clients
    for _c in _clients:
        if _c.startswith("aws:"):
            getattr(aws_clients, _c[4:])()
        elif _c == "secrets":
            from cutout.aws import secrets
            secrets._provider()  # what the first secret read builds: Powertools' SecretsProvider on the shared client
        elif _c == "magic_hour":
            from cutout.magic_hour.client import MagicHourClient
            MagicHourClient(os.environ["MAGIC_HOUR_BASE_URL"], "bench-key")
        elif _c == "http":
            import requests
            requests.Session()
else:
    import boto3
    import requests
    if _mode == "floor_b":
        # Floor (b): the Powertools modules the handler loaded (argv[3], in the handler's load order; a module
        # already loaded by its parent costs a dict lookup) and the objects every handler builds from them.
        for _m in [m for m in sys.argv[3].split(",") if m]:
            __import__(_m)  # the import statement's own path (importlib.import_module escapes -X importtime)
        from aws_lambda_powertools import Logger, Metrics
        Logger(service="cutout")
        Metrics(namespace="Cutout", service="cutout")
    _t1, _c1 = time.perf_counter(), time.process_time()
    for _c in _clients:
        if _c.startswith("aws:"):
            boto3.client(_c[4:])
        elif _c == "secrets":
            boto3.client("secretsmanager")
        else:
            requests.Session()
_t2, _c2 = time.perf_counter(), time.process_time()
import json, resource
print("BENCH_RESULT " + json.dumps({
    "import_ms": (_t1 - _t0) * 1000,
    "ready_ms": (_t2 - _t0) * 1000,
    "import_cpu_ms": (_c1 - _c0) * 1000,
    "ready_cpu_ms": (_c2 - _c0) * 1000,
    "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "modules": len(sys.modules),
    "powertools": [n for n, m in list(sys.modules.items()) if n.split(".")[0] == "aws_lambda_powertools" and m],
}))
"""


# The functions whose template environment sets MAX_JOBS_IN_FLIGHT (all but the webhook, which ends no job).
ADMISSION_FUNCTIONS = frozenset({"submit", "poll", "finalize", "sweeper"})


def child_env(function: str) -> dict[str, str]:
    """The environment a function gets (template names), with AWS pointed at a port where nothing listens."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "functions" / function), str(ROOT / "layers" / "shared"), sysconfig.get_paths()["purelib"]]
        ),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # discard port: client creation never connects
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "JOBS_TABLE": "cutout-jobs",
        "SOURCE_BUCKET": "cutout-images",
        "INPUT_PREFIX": "incoming/",
        "OUTPUT_PREFIX": "cutouts/",
        "MAGIC_HOUR_BASE_URL": "http://127.0.0.1:9",
        "MAGIC_HOUR_API_KEY_SECRET": "cutout/magic-hour-api-key",
        "MAGIC_HOUR_WEBHOOK_SECRET": "cutout/magic-hour-webhook-secret",
        "INGEST_QUEUE_URL": "http://127.0.0.1:9/123456789012/cutout-ingest",
        "POLL_QUEUE_URL": "http://127.0.0.1:9/123456789012/cutout-poll",
        "COMPLETION_QUEUE_URL": "http://127.0.0.1:9/123456789012/cutout-completion",
        "POWERTOOLS_SERVICE_NAME": "cutout",
        "POWERTOOLS_METRICS_NAMESPACE": "Cutout",
        "LOG_LEVEL": "INFO",
    }
    if function in ADMISSION_FUNCTIONS:
        # As deployed (the template's MaxJobsInFlight default): admission on, so its modules load at cold start.
        env["MAX_JOBS_IN_FLIGHT"] = "3"
    return env


MODES = ("handler", "floor", "floor_b")  # the subject, floor (a), floor (b)
# Why CPU time: on the shared 2-core machine the wall clock mostly measures the neighbours (the same child took
# 0.35 s or 2 s depending on the load, IQRs as wide as the medians). Importing and building clients is CPU work on
# local files, so the process's CPU time is the cost that carries over to an uncontended Lambda INIT.
MEASURE = "CPU time of the child (time.process_time) from its first line to ready; wall clock reported beside it"


@dataclass(frozen=True)
class Sample:
    import_ms: float
    ready_ms: float
    import_cpu_ms: float
    ready_cpu_ms: float
    wall_ms: float
    maxrss_kb: int
    powertools: tuple[str, ...]  # the aws_lambda_powertools modules the process had loaded when ready


def _start(
    function: str, mode: str, importtime: bool, powertools: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], float]:
    # -S: no site processing (the venv's .pth files, the editable install's finder) — Lambda has none either;
    # the packages come from PYTHONPATH, as /opt/python and the runtime's own path provide them there.
    cmd = [sys.executable, "-S"]
    if importtime:
        cmd += ["-X", "importtime"]
    cmd += ["-c", CHILD, mode, ",".join(HANDLER_CLIENTS[function]), ",".join(powertools)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=child_env(function), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, t0


def _finish(function: str, mode: str, proc: subprocess.Popen[str], t0: float) -> tuple[Sample, str]:
    stdout, stderr = proc.communicate(timeout=120)
    wall = (time.perf_counter() - t0) * 1000
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"cold-start child {function}/{mode} failed ({proc.returncode}): {stderr[-2000:]}")
    doc = json.loads(line.removeprefix("BENCH_RESULT "))
    sample = Sample(
        doc["import_ms"],
        doc["ready_ms"],
        doc["import_cpu_ms"],
        doc["ready_cpu_ms"],
        wall,
        int(doc["maxrss_kb"]),
        tuple(doc["powertools"]),
    )
    return sample, stderr


def run_child(
    function: str, mode: str, *, importtime: bool = False, powertools: tuple[str, ...] = ()
) -> tuple[Sample, str]:
    proc, t0 = _start(function, mode, importtime, powertools)
    return _finish(function, mode, proc, t0)


# ----- -X importtime ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportLine:
    name: str
    self_us: int
    cumulative_us: int
    level: int


def parse_importtime(stderr: str) -> list[ImportLine]:
    out: list[ImportLine] = []
    for raw in stderr.splitlines():
        if not raw.startswith("import time:") or "self [us]" in raw:
            continue
        parts = raw.split(":", 1)[1].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        self_us, cum_us, name = parts
        name = name.rstrip()
        # One space after the bar, then two per nesting level.
        level = (len(name) - len(name.lstrip(" ")) - 1) // 2
        out.append(ImportLine(name.strip(), int(self_us), int(cum_us), level))
    return out


def offenders(subject: list[ImportLine], floor: list[ImportLine], top: int = 8) -> dict[str, Any]:
    """Imports the handler pays and the floor does not: the roots of those subtrees by cumulative time,
    and the self time grouped by top-level package."""
    floor_names = {ln.name for ln in floor}
    # -X importtime prints children before their parent (post-order); walk backwards to find each line's parent.
    parents: dict[int, str | None] = {}
    stack: list[tuple[int, str]] = []
    for idx in range(len(subject) - 1, -1, -1):
        ln = subject[idx]
        while stack and stack[-1][0] >= ln.level:
            stack.pop()
        parents[idx] = stack[-1][1] if stack else None
        stack.append((ln.level, ln.name))
    extra = {ln.name for ln in subject} - floor_names - {ENTRY_MODULE}
    # Time a subtree adds over the floor: the self time of its modules the floor does not import. Post-order:
    # children precede their parent, so one forward pass with a stack accumulates the subtrees.
    extra_cum = [ln.self_us if ln.name in extra else 0 for ln in subject]
    pending: list[int] = []
    for idx, ln in enumerate(subject):
        while pending and subject[pending[-1]].level > ln.level:
            extra_cum[idx] += extra_cum[pending.pop()]
        pending.append(idx)
    # Roots of the extra subtrees; the handler module itself is the entry point, not an offender.
    roots = [
        ln for idx, ln in enumerate(subject) if ln.name in extra and (parents[idx] is None or parents[idx] not in extra)
    ]
    root_extra = {ln.name: extra_cum[idx] for idx, ln in enumerate(subject) if ln in roots}
    roots.sort(key=lambda ln: root_extra[ln.name], reverse=True)
    by_package: dict[str, int] = {}
    for ln in subject:
        if ln.name in extra:
            pkg = ln.name.split(".", 1)[0]
            by_package[pkg] = by_package.get(pkg, 0) + ln.self_us
    overall = sorted(subject, key=lambda ln: ln.self_us, reverse=True)[:top]
    return {
        "extra_over_floor_ms": round(sum(ln.self_us for ln in subject if ln.name in extra) / 1000, 1),
        "extra_modules": len(extra),
        "top_extra_imports": [
            {
                "module": ln.name,
                "extra_ms": round(root_extra[ln.name] / 1000, 1),
                "cumulative_ms": round(ln.cumulative_us / 1000, 1),
            }
            for ln in roots[:top]
        ],
        "extra_by_package_ms": {
            k: round(v / 1000, 1) for k, v in sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:top]
        },
        "top_self_ms": [{"module": ln.name, "self_ms": round(ln.self_us / 1000, 1)} for ln in overall],
    }


# ----- the part ----------------------------------------------------------------------------------------------
def _order(i: int) -> tuple[str, ...]:
    """Run i's launch order: forwards, then backwards (ABC CBA ...), so drift on a busy machine hits all three."""
    return MODES if i % 2 == 0 else MODES[::-1]


def _least_disturbed_importtime(fn: str, mode: str, powertools: tuple[str, ...], tries: int = 3) -> list[ImportLine]:
    """`-X importtime` of one process is at the mercy of the neighbours; of a few, the one with the least total
    self time is the least disturbed, and the offenders it names are the ones the code has."""
    runs = [parse_importtime(run_child(fn, mode, importtime=True, powertools=powertools)[1]) for _ in range(tries)]
    return min(runs, key=lambda lines: sum(ln.self_us for ln in lines))


def _measure(fn: str, runs: int) -> dict[str, Any]:
    # One unrecorded handler run: writes __pycache__, warms the page cache, and names the Powertools modules
    # the handler loads — floor (b) imports exactly those, so it follows the code instead of a list kept by hand.
    warm, _ = run_child(fn, "handler")
    powertools = warm.powertools
    samples: dict[str, list[Sample]] = {mode: [] for mode in MODES}
    for i in range(runs):
        for mode in _order(i):
            sample, _ = run_child(fn, mode, powertools=powertools)
            samples[mode].append(sample)
    subj, flo, flo_b = (samples[mode] for mode in MODES)
    times = {mode: _least_disturbed_importtime(fn, mode, powertools) for mode in MODES}
    cpu = {mode: [s.ready_cpu_ms for s in samples[mode]] for mode in MODES}
    wall = {mode: [s.ready_ms for s in samples[mode]] for mode in MODES}
    return {
        "clients": list(HANDLER_CLIENTS[fn]),
        "powertools_modules": list(powertools),
        # Structure, checked by the smoke test: floor (b) really loads every Powertools module the handler does.
        "floor_b_covers_powertools": set(powertools) <= set(flo_b[-1].powertools),
        # Judged on CPU time (see MEASURE); the in-process wall clock beside it.
        "ready_cpu_ms": summary(cpu["handler"]),
        "floor_ready_cpu_ms": summary(cpu["floor"]),
        "floor_b_ready_cpu_ms": summary(cpu["floor_b"]),
        "ratio": ratio(cpu["handler"], cpu["floor"], target=COLD_START_TARGET),
        "ratio_over_b": ratio(cpu["handler"], cpu["floor_b"], target=OWN_CODE_TARGET),
        "floor_b_over_a": ratio(cpu["floor_b"], cpu["floor"]),
        "ready_ms": summary(wall["handler"]),
        "floor_ready_ms": summary(wall["floor"]),
        "floor_b_ready_ms": summary(wall["floor_b"]),
        "wall_ratio_ready": ratio(wall["handler"], wall["floor"]),
        "wall_ratio_ready_over_b": ratio(wall["handler"], wall["floor_b"]),
        "import_ms": summary([s.import_ms for s in subj]),
        "floor_import_ms": summary([s.import_ms for s in flo]),
        "floor_b_import_ms": summary([s.import_ms for s in flo_b]),
        "import_ratio": ratio([s.import_ms for s in subj], [s.import_ms for s in flo]),
        "process_wall_ms": summary([s.wall_ms for s in subj]),
        "floor_process_wall_ms": summary([s.wall_ms for s in flo]),
        "wall_ratio": ratio([s.wall_ms for s in subj], [s.wall_ms for s in flo]),
        "peak_rss_mb": summary([s.maxrss_kb / 1024 for s in subj]),
        "floor_peak_rss_mb": summary([s.maxrss_kb / 1024 for s in flo]),
        "importtime": offenders(times["handler"], times["floor"]),
        "importtime_over_b": offenders(times["handler"], times["floor_b"]),
    }


def run(runs: int, functions: tuple[str, ...] | None = None, log: Any = print) -> dict[str, Any]:
    functions = functions or tuple(HANDLER_CLIENTS)
    results: dict[str, Any] = {
        "compared": (
            "subject = import functions/<name>/app.py + the clients it creates on its first record "
            "(cutout.aws.aws_clients, MagicHourClient); floor (a) = import boto3 + requests + the same clients created "
            "directly; floor (b) = floor (a) + the Powertools modules the handler loads + its Logger and Metrics"
        ),
        "runs": runs,
        "mode": "subject, floor (a) and floor (b) alternating (ABC CBA)",
        "measure": MEASURE,
        "target": COLD_START_TARGET,
        "target_over_b": OWN_CODE_TARGET,
        "handlers": {},
    }
    for fn in functions:
        entry = _measure(fn, runs)
        results["handlers"][fn] = entry
        log(
            f"  cold start {fn:<9} {entry['ready_cpu_ms']['median']:.0f} ms CPU vs floor (a) "
            f"{entry['floor_ready_cpu_ms']['median']:.0f} ms -> {entry['ratio']['value']:.2f}x, floor (b) "
            f"{entry['floor_b_ready_cpu_ms']['median']:.0f} ms -> {entry['ratio_over_b']['value']:.2f}x"
        )
    return results
