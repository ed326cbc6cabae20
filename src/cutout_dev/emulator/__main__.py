"""CLI: `python -m cutout_dev.emulator --port 8787 --render-seconds 4 --webhook-url ... --webhook-secret ...`.

Every EmulatorConfig field is also settable with `--set name=value` (JSON values), and at run
time through `POST /_emulator/config`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from .config import EmulatorConfig
from .server import EmulatorServer


def _parse_set(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects name=value, got {item!r}")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw  # bare strings need no quotes
    return out


def build_parser() -> argparse.ArgumentParser:
    d = EmulatorConfig()
    p = argparse.ArgumentParser(prog="python -m cutout_dev.emulator", description="Magic Hour API emulator")
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--api-key", default=d.api_key)
    p.add_argument("--public-base-url", default=d.public_base_url)
    p.add_argument("--queue-seconds", type=float, default=d.queue_seconds)
    p.add_argument("--render-seconds", type=float, default=d.render_seconds)
    p.add_argument("--initial-credits", type=int, default=d.initial_credits)
    p.add_argument("--download-ttl-seconds", type=int, default=d.download_ttl_seconds)
    p.add_argument("--webhook-url", default=d.webhook_url)
    p.add_argument("--webhook-secret", default=d.webhook_secret)
    p.add_argument("--webhook-events", default=",".join(d.webhook_events), help="comma-separated")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="NAME=JSON", help="any EmulatorConfig field")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    named: dict[str, Any] = dict(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        public_base_url=args.public_base_url,
        queue_seconds=args.queue_seconds,
        render_seconds=args.render_seconds,
        initial_credits=args.initial_credits,
        download_ttl_seconds=args.download_ttl_seconds,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        webhook_events=[e for e in args.webhook_events.split(",") if e],
        seed=args.seed,
    )
    config = EmulatorConfig().with_changes(**{**named, **_parse_set(args.set)})
    server = EmulatorServer(config)
    base_url = server.start()
    print(f"Magic Hour emulator listening on {base_url} (state: {base_url}/_emulator/state)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop it
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
