"""``cutout`` — developer commands for the local stack.

    cutout local up [--no-webhooks] [--render-seconds 2] [--param PollFirstDelaySeconds=3] [--fault rate_5xx=0.2]
    cutout jobs                 # the jobs table of the running local stack
    cutout redrive IngestDLQ    # move a DLQ's messages back to its source queue
    cutout samples              # regenerate samples/

``local up`` writes where everything is to ``.local-stack/endpoints.json`` so the other commands (from another
terminal) find the running stack.
"""

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
from typing import Any

from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.local_stack.stack import PROJECT_ROOT, is_job_record, redrive_messages

STATE_FILE = PROJECT_ROOT / ".local-stack" / "endpoints.json"


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cutout", description="Cutout developer tools")
    sub = parser.add_subparsers(dest="command", required=True)

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
        help="call api.magichour.ai with MAGIC_HOUR_API_KEY (spends credits; polling only, asset upload)",
    )
    up.add_argument("--emulator", action="store_true", help="use the emulator even if MAGIC_HOUR_API_KEY is set")
    up.add_argument("-v", "--verbose", action="store_true", help="debug logging of the local machinery")

    sub.add_parser("jobs", help="list the running local stack's jobs")
    redrive = sub.add_parser("redrive", help="move messages from a DLQ back to its source queue")
    redrive.add_argument("dlq", help="DLQ logical id (IngestDLQ, PollDLQ, CompletionDLQ) or URL")
    redrive.add_argument("--limit", type=int, default=None)
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
    print("Upload an image:")
    print(f"  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x {ep.aws_cli_upload_line('image.png')}")
    print("Watch jobs:  cutout jobs      Redrive a DLQ:  cutout redrive IngestDLQ      Stop: Ctrl-C")
    print(flush=True)


def _write_state(stack: LocalStack) -> None:
    ep = stack.endpoints
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "aws": ep.aws,
        "region": ep.region,
        "table": ep.table,
        "bucket": ep.bucket,
        "queues": ep.queues,
        "redrive": stack.dead_letter_queues(),
    }
    STATE_FILE.write_text(json.dumps(state, indent=2), encoding="utf-8")


def _watch(stack: LocalStack, stop: threading.Event) -> None:
    """Print every job status change (the progress log of ``local up``)."""
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


def local_up(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    emulator = {"render_seconds": args.render_seconds, **_emulator_settings(args.fault)}
    config = LocalStackConfig(
        parameters=dict(args.param),
        webhooks=not args.no_webhooks,
        emulator=emulator,
        visibility_timeout_seconds=args.visibility_timeout,
        schedule_interval_seconds=args.schedule_interval,
        function_log=args.function_log,
        # The contract: with MAGIC_HOUR_API_KEY set, the local stack calls the real API;
        # --emulator keeps it offline anyway.
        real_magic_hour=not args.emulator and (args.real_magic_hour or bool(os.environ.get("MAGIC_HOUR_API_KEY"))),
    )
    stop = threading.Event()
    # SIGTERM behaves like Ctrl-C, so `kill <pid>` also stops cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalStack(config) as stack:
        _write_state(stack)
        _print_endpoints(stack)
        watcher = threading.Thread(target=_watch, args=(stack, stop), name="job-watcher", daemon=True)
        watcher.start()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
        stop.set()
        watcher.join(timeout=5)
    STATE_FILE.unlink(missing_ok=True)
    print("stopped", flush=True)
    return 0


def _state() -> dict[str, Any]:
    if not STATE_FILE.exists():
        raise SystemExit("no local stack running (start one with: cutout local up)")
    state: dict[str, Any] = json.loads(STATE_FILE.read_text(encoding="utf-8"))
    return state


def _client(state: dict[str, Any], service: str) -> Any:
    import boto3

    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=state["aws"],
        region_name=state["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
    )


def jobs_command() -> int:
    from boto3.dynamodb.types import TypeDeserializer

    state = _state()
    deserializer = TypeDeserializer()
    items = [
        {k: deserializer.deserialize(v) for k, v in raw.items()}
        for raw in _client(state, "dynamodb").scan(TableName=state["table"]).get("Items", [])
    ]
    items = [i for i in items if is_job_record(i)]
    for item in sorted(items, key=lambda j: str(j.get("created_at", ""))):
        print(
            f"{item['job_id']}  {item.get('status', '?'):<10}  {item.get('source_key', '')}  "
            f"{item.get('output_key') or item.get('error_code') or ''}"
        )
    print(f"{len(items)} job(s)")
    return 0


def redrive_command(args: argparse.Namespace) -> int:
    state = _state()
    queues: dict[str, str] = state["queues"]
    dlq_id = args.dlq if args.dlq in queues else next((k for k, v in queues.items() if v == args.dlq), None)
    if dlq_id is None or dlq_id not in state["redrive"]:
        raise SystemExit(f"{args.dlq} is not a DLQ of the local stack ({', '.join(state['redrive'])})")
    source = state["redrive"][dlq_id]
    moved = redrive_messages(_client(state, "sqs"), queues[dlq_id], queues[source], limit=args.limit)
    print(f"moved {moved} message(s) from {dlq_id} to {source}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "local":
        return local_up(args)
    if args.command == "jobs":
        return jobs_command()
    if args.command == "redrive":
        return redrive_command(args)
    if args.command == "samples":
        from cutout_dev.make_samples import generate

        for path in generate():
            print(path)
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
