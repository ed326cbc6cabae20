"""``cutout`` — operate a Cutout stack, deployed or local, and run the local stack.

    cutout [--stack NAME] [--profile P] [--region R] [--output table|json | --json] [--query JMESPATH] COMMAND
    cutout status                 # one screen: counts, in flight, DLQs, credits today, alarms (exit 2: look at it)
    cutout jobs [--status S] [--since 1d] [--prefix P] [--limit N]
    cutout job ID|s3://bucket/key # one record, its history, a Logs Insights query
    cutout spend [--days 7]       # credits and images per day
    cutout redrive IngestDLQ      # DLQ → its source queue
    cutout local up [--no-webhooks] [--render-seconds 2] [--param PollFirstDelaySeconds=3] [--fault rate_5xx=0.2]
    cutout samples                # regenerate samples/

Without ``--stack`` the commands act on the running local stack: ``local up`` writes where it is to
``.local-stack/endpoints.json``. Exit status: 0 ok, 1 error, 2 a person is needed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cutout_dev.ops import COMMAND_MODULES
from cutout_dev.ops.output import EXIT_ERROR
from cutout_dev.ops.target import TargetError, local_state_file, resolve

if TYPE_CHECKING:
    # Imported when used: the local stack brings moto's server (a third of a second) that the ops commands
    # against a deployed stack never need.
    from cutout_dev.gallery import LivePage
    from cutout_dev.local_stack import LocalStack


def _kv(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _emulator_settings(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``--fault`` values typed like the EmulatorConfig field they set (tuples as comma lists)."""
    import dataclasses

    from cutout_dev.emulator import EmulatorConfig

    defaults = {f.name: f.default for f in dataclasses.fields(EmulatorConfig)}
    settings: dict[str, Any] = {}
    for name, value in pairs:
        if name not in defaults:
            raise SystemExit(f"--fault {name}: not an EmulatorConfig field")
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


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1 (an error), keeping 2 for "a person is needed" (see ops.output)."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The AWS CLI's conventions; accepted before or after the command (``suppress`` on the subcommands, so a
    value given before the command is not reset by the subcommand's default)."""
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("stack and output")
    group.add_argument("--stack", default=default, metavar="NAME", help="deployed stack (default: the local stack)")
    group.add_argument("--profile", default=default, help="AWS profile (as the AWS CLI)")
    group.add_argument("--region", default=default, help="AWS region (as the AWS CLI)")
    group.add_argument("--output", choices=("table", "json"), default=default, help="table (default) or json")
    group.add_argument(
        "--json", dest="output", action="store_const", const="json", default=default, help="--output json"
    )
    group.add_argument("--query", default=default, metavar="JMESPATH", help="pick from the JSON (implies json)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cutout", description="Operate Cutout (a deployed stack or the local stack)")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # not built (yet) on this branch
                continue
            raise
        add_parser = getattr(module, "add_parser", None)
        if add_parser is not None:  # a library module not (yet) wired as a command is not one
            add_parser(sub)
    for command in sub.choices.values():
        _global_options(command, suppress=True)

    local = sub.add_parser("local", help="the local stack").add_subparsers(dest="action", required=True)
    up = local.add_parser("up", help="run the whole pipeline locally until Ctrl-C")
    up.add_argument("--no-webhooks", action="store_true", help="emulator sends no webhooks (polling only)")
    up.add_argument("--render-seconds", type=float, default=1.0, help="emulator render time (default 1)")
    up.add_argument("--param", type=_kv, action="append", default=[], metavar="NAME=VALUE", help="template parameter")
    up.add_argument(
        "--fault",
        type=_kv,
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="emulator setting (EmulatorConfig field), e.g. rate_5xx=0.2",
    )
    up.add_argument("--visibility-timeout", type=int, default=None, help="override the queues' (seconds)")
    up.add_argument("--schedule-interval", type=float, default=60.0, help="sweeper period (seconds; 0 = off)")
    up.add_argument("--function-log", type=Path, default=None, help="send function output to this file")
    up.add_argument(
        "--real-magic-hour",
        action="store_true",
        help="call the real Magic Hour API with MAGIC_HOUR_API_KEY: 5 credits per image uploaded, after a "
        "confirmation (polling only, asset upload). Without it: the emulator, whatever the environment holds",
    )
    up.add_argument("--yes", action="store_true", help="confirm --real-magic-hour's spend without asking")
    up.add_argument("--emulator", action="store_true", help=argparse.SUPPRESS)  # the default now; old scripts
    up.add_argument("-v", "--verbose", action="store_true", help="debug logging of the local machinery")
    sub.add_parser("samples", help="regenerate samples/")
    return parser


def _print_endpoints(stack: LocalStack) -> None:
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
    print("Upload an image (moto accepts any credentials, but the AWS CLI wants some):")
    print(f"  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x {ep.aws_cli_upload_line('image.png')}")
    print("Operate it from another terminal (after `source .venv/bin/activate`):")
    print("  cutout status      cutout jobs      cutout job <id|s3://bucket/key>      cutout redrive IngestDLQ")
    print("Stop: Ctrl-C")
    print(flush=True)


def _write_state(stack: LocalStack) -> None:
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


def local_up(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    emulator = {"render_seconds": args.render_seconds, **_emulator_settings(args.fault)}
    from cutout_dev.gallery import LivePage
    from cutout_dev.local_stack import LocalStack, LocalStackConfig
    from cutout_dev.real_api import RealApiRefused, ask_for_real_api

    config = LocalStackConfig(
        parameters=dict(args.param),
        webhooks=not args.no_webhooks,
        emulator=emulator,
        visibility_timeout_seconds=args.visibility_timeout,
        schedule_interval_seconds=args.schedule_interval,
        function_log=args.function_log,
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
    # SIGTERM behaves like Ctrl-C, so `kill <pid>` also stops cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with stack:
        _write_state(stack)
        _print_endpoints(stack)
        # The page lives beside the state file (.local-stack/page/), with the stack's other local state.
        page_dir = local_state_file().parent / "page"
        page = LivePage(page_dir, stack.client("s3"), default_output_bucket=stack.endpoints.output_bucket)
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
            print("\nstopping ...", flush=True)
        stop.set()
        watcher.join(timeout=5)
    local_state_file().unlink(missing_ok=True)
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "local":
        return local_up(args)
    if args.command == "samples":
        from cutout_dev.make_samples import generate

        for path in generate():
            print(path)
        return 0
    try:
        target = resolve(args.stack, profile=args.profile, region=args.region)
        code: int = args.run(args, target)
    except TargetError as exc:
        print(f"cutout: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (ClientError, BotoCoreError) as exc:  # AccessDenied, throttling after retries, endpoint down, ...
        print(f"cutout: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cutout: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
