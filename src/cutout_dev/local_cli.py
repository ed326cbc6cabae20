"""``cutout local up`` and ``cutout local down``: run the local stack in the foreground (endpoints printed, state
written for the other commands, the functions' logs to a file), and stop one running elsewhere."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutout_dev.ops.output import EXIT_ERROR, EXIT_OK
from cutout_dev.ops.target import TargetError, local_state_file, pid_alive, read_local_state

if TYPE_CHECKING:
    # Imported when used: the local stack brings moto's server (a third of a second) that the ops commands
    # against a deployed stack never need.
    from cutout_dev.gallery import LivePage
    from cutout_dev.local_stack import LocalStack


DEFAULT_FUNCTION_LOG_NAME = "functions.log"
DOWN_TIMEOUT_SECONDS = 30.0


def kv(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def emulator_settings(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``--fault`` values typed like the EmulatorConfig field they set (tuples as comma lists)."""
    import dataclasses

    from cutout_dev.emulator import EmulatorConfig

    defaults = {f.name: f.default for f in dataclasses.fields(EmulatorConfig)}
    settings: dict[str, Any] = {}
    for name, value in pairs:
        if name not in defaults:
            raise SystemExit(f"--fault {name}: not an EmulatorConfig field")
        if isinstance(defaults[name], bool):
            if value.lower() not in ("true", "false"):
                raise SystemExit(f"--fault {name}: true or false, not {value!r}")
            settings[name] = value.lower() == "true"
            continue
        settings[name] = (
            tuple(v for v in value.split(",") if v) if isinstance(defaults[name], tuple) else _number(value)
        )
    return settings


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def print_endpoints(stack: LocalStack, log_file: Path | None) -> None:
    ep = stack.endpoints
    print("Cutout local stack is up (127.0.0.1 only)")
    print(f"  AWS endpoint (moto)  {ep.aws}   region {ep.region}, any credentials")
    print(f"  Magic Hour           {ep.magic_hour}")
    print(f"  Webhook (Fn URL)     {ep.webhook}")
    print(f"  Bucket               s3://{ep.bucket}/  input {ep.input_prefix!r}  output {ep.output_prefix!r}")
    print(f"  Jobs table           {ep.table}")
    for name, url in ep.queues.items():
        print(f"  {name:<20} {url}")
    print()
    print("From another terminal (after `source .venv/bin/activate`):")
    print("  cutout upload samples/*.png      # one line per file: its key and job id")
    print("  cutout status      cutout jobs      cutout job <id|s3://bucket/key>      cutout redrive IngestDLQ")
    print("  cutout doctor      (every check of the stack, each finding with its fix)")
    if log_file is not None:
        print(f"Function logs (Powertools JSON, EMF): {log_file}   (--verbose shows them here)")
    print("Stop: Ctrl-C, or `cutout local down` from another terminal")
    print(flush=True)


def write_state(stack: LocalStack) -> None:
    ep = stack.endpoints
    state_file = local_state_file()
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "stack_name": stack.config.stack_name,
        "aws": ep.aws,
        "region": ep.region,
        "table": ep.table,
        "bucket": ep.bucket,
        "queues": ep.queues,
        "redrive": stack.dead_letter_queues(),
        # What `cutout doctor` needs that the stack's CloudFormation record cannot say locally: the template the
        # functions come from (their reserved concurrency) and the account's Lambda concurrency quota, which has
        # no local service to ask.
        "template": str(stack.config.template),
        "account_concurrency_quota": int(getattr(stack.config, "account_concurrency_quota", 1000)),
        # For `cutout local down` (the process to signal) and for status/job (where the functions' logs are).
        "pid": os.getpid(),
        "function_log": str(stack.config.function_log.resolve()) if stack.config.function_log else None,
    }
    state_file.write_text(json.dumps(state, indent=2), encoding="utf-8")


def _watch(stack: LocalStack, stop: threading.Event, page: LivePage | None = None) -> None:
    """Print every job status change (the progress log of ``local up``) and keep the before/after page current."""
    seen: dict[str, str] = {}
    while not stop.wait(1.0):
        try:
            jobs = stack.jobs()
        except Exception as exc:  # moto is going away during shutdown
            if not stop.is_set():
                print(f"(jobs scan failed: {exc})", flush=True)
            continue
        for job in sorted(jobs, key=lambda j: str(j.get("created_at", ""))):
            status = str(job.get("status"))  # jobs() returns job records only
            job_id = str(job["job_id"])
            if seen.get(job_id) != status:
                seen[job_id] = status
                detail = job.get("output_key") or job.get("error_code") or ""
                stamp = time.strftime("%H:%M:%S")
                print(f"{stamp}  {job.get('source_key', '?')}  -> {status}  {detail}", flush=True)
        if page is not None:
            try:
                page.refresh(jobs)
            except Exception as exc:  # the page is a view: never let it stop the progress log
                print(f"(before/after page not refreshed: {exc})", flush=True)


class _NotTheFunctions(logging.Filter):
    """Drops the functions' own records (their Powertools logger, ``cutout``) from the root logger's handlers:
    Powertools already writes each as one JSON line, and a second, plain copy on the terminal doubled every line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "cutout" or record.name.startswith("cutout."))


def _quiet(log_file: Path) -> None:
    """The local machinery's INFO lines and Python warnings (Powertools' "No application metrics to publish") go
    to the function log with the functions' own output; the terminal keeps warnings and errors of the machinery
    and the progress lines."""
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(_NotTheFunctions())
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    for existing in root.handlers:
        if existing is not handler:
            existing.setLevel(logging.WARNING)
    logging.captureWarnings(True)  # warnings.warn → the "py.warnings" logger
    logging.getLogger("py.warnings").propagate = False
    logging.getLogger("py.warnings").addHandler(handler)


def _local_logging(args: argparse.Namespace) -> Path | None:
    """The terminal's logging for `cutout local up`, and the functions' log file (None: they log to the terminal)."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    for terminal in logging.getLogger().handlers:
        terminal.addFilter(_NotTheFunctions())
    log_file: Path | None = args.function_log
    if log_file is None and not args.verbose:
        log_file = local_state_file().parent / DEFAULT_FUNCTION_LOG_NAME
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        if not args.verbose:
            _quiet(log_file)
    return log_file


def local_up(args: argparse.Namespace) -> int:
    running = read_local_state(local_state_file())
    if running is not None and isinstance(running.get("pid"), int) and running["pid"] != os.getpid():
        print(f"cutout: a local stack is running already (pid {running['pid']}); stop it with: cutout local down")
        return EXIT_ERROR
    log_file = _local_logging(args)
    emulator = {"render_seconds": args.render_seconds, **emulator_settings(args.fault)}
    from cutout_dev.gallery import EMULATOR_NOTE, LivePage
    from cutout_dev.local_stack import LocalStack, LocalStackConfig
    from cutout_dev.real_api import RealApiRefused, ask_for_real_api

    config = LocalStackConfig(
        parameters=dict(args.param),
        webhooks=not args.no_webhooks,
        emulator=emulator,
        visibility_timeout_seconds=args.visibility_timeout,
        schedule_interval_seconds=args.schedule_interval,
        function_log=log_file,
        # Real credits only when asked for by flag and confirmed: an exported MAGIC_HOUR_API_KEY is not asking.
        real_magic_hour=args.real_magic_hour,
    )
    if args.real_magic_hour:
        try:  # confirmed, and reachable with the key, before anything starts
            ask_for_real_api(None, assume_yes=args.yes)
        except RealApiRefused as exc:
            print(f"cutout: {exc}", file=sys.stderr)
            return EXIT_ERROR
    elif os.environ.get("MAGIC_HOUR_API_KEY"):
        print("MAGIC_HOUR_API_KEY is set and not used: the emulator runs (--real-magic-hour asks for the paid API)")
    stack = LocalStack(config).start()
    stop = threading.Event()
    # SIGTERM behaves like Ctrl-C, so `cutout local down` (or `kill <pid>`) also stops cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with stack:
            write_state(stack)
            print_endpoints(stack, log_file)
            # The page lives beside the state file (.local-stack/page/), with the stack's other local state.
            page_dir = local_state_file().parent / "page"
            page = LivePage(
                page_dir,
                stack.client("s3"),
                default_output_bucket=stack.endpoints.output_bucket,
                note="" if stack.uses_real_magic_hour else EMULATOR_NOTE,
            )
            page.refresh(stack.jobs())
            print(
                f"Before/after page of what you upload (refreshed as jobs change): {page.page.resolve().as_uri()}",
                flush=True,
            )
            watcher = threading.Thread(target=_watch, args=(stack, stop, page), name="job-watcher", daemon=True)
            watcher.start()
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            print("\nstopping ...", flush=True)
            stop.set()
            watcher.join(timeout=5)
    finally:
        local_state_file().unlink(missing_ok=True)
    print("stopped", flush=True)
    return EXIT_OK


def local_down() -> int:
    """Stop the `cutout local up` the state file names: SIGTERM (it stops as on Ctrl-C), wait for it to exit."""
    state_file = local_state_file()
    if not state_file.exists():
        print("no local stack is running (nothing to stop)")
        return EXIT_OK
    state = read_local_state(state_file)
    if state is None:
        state_file.unlink(missing_ok=True)
        print(f"no local stack is running (removed the stale {state_file})")
        return EXIT_OK
    pid = state.get("pid")
    if not isinstance(pid, int):
        raise TargetError(f"{state_file} names no process (written by an older cutout): stop it with Ctrl-C there")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT_SECONDS
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        raise TargetError(f"the local stack (pid {pid}) did not stop within {DOWN_TIMEOUT_SECONDS:g} s: kill {pid}")
    state_file.unlink(missing_ok=True)  # its own shutdown removes it; a crash on the way out may not have
    print(f"local stack stopped (pid {pid})")
    return EXIT_OK
