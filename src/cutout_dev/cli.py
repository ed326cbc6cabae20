"""``cutout`` — operate a Cutout stack, deployed or local, and run the local stack.

    cutout [--stack NAME] [--profile P] [--region R] [--output table|json | --json] [--query JMESPATH] COMMAND
    cutout status                 # one screen: counts, in flight, DLQs, credits today, alarms (exit 2: look at it)
    cutout jobs [--status S] [--since 1d] [--prefix P] [--limit N]
    cutout job ID|s3://bucket/key # one record, its history, where its logs are
    cutout upload FILE... [--prefix P]  # into the stack's input prefix (no AWS CLI needed)
    cutout spend [--days 7]       # credits and images per day
    cutout redrive IngestDLQ      # DLQ → its source queue
    cutout doctor                 # deploy-day and every-day checks, each finding with its fix (exit 2: fix it)
    cutout local up [--no-webhooks] [--render-seconds 2] [--param PollFirstDelaySeconds=3] [--fault rate_5xx=0.2]
    cutout local down             # stop a `cutout local up` running elsewhere (SIGTERM, then wait)
    cutout samples                # regenerate samples/

Without ``--stack`` the commands act on the running local stack: ``local up`` writes where it is to
``.local-stack/endpoints.json`` (with its pid and the file its functions log to). Exit status, the same for
every command (ops.output.EXIT_CODES): 0 fine, 1 an error or refused, 2 a person is needed, 130 interrupted.
Errors are one line on stderr saying what and what to do; CUTOUT_DEBUG=1 adds the traceback of an unexpected one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jmespath
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from jmespath.exceptions import JMESPathError

from cutout_dev.local_cli import DEFAULT_FUNCTION_LOG_NAME, kv, local_down, local_up
from cutout_dev.ops import COMMAND_MODULES
from cutout_dev.ops.output import EXIT_CODES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from cutout_dev.ops.target import TargetError, resolve

if TYPE_CHECKING:
    # Imported when used: the local stack brings moto's server (a third of a second) that the ops commands
    # against a deployed stack never need.
    pass


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


def exit_codes_text() -> str:
    """The exit status table, as ``cutout --help`` ends and docs/cli.md shows it."""
    return "exit status (every command):\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cutout",
        description="Operate Cutout (a deployed stack or the local stack)",
        epilog=exit_codes_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for module_name in COMMAND_MODULES:
        # A listed module that is missing or has no add_parser is a bug, not a command to leave out quietly.
        importlib.import_module(module_name).add_parser(sub)
    for command in sub.choices.values():
        _global_options(command, suppress=True)
        for action in command._subparsers._group_actions if command._subparsers else ():
            for nested in getattr(action, "choices", {}).values():  # a group's commands (cutout presets check)
                _global_options(nested, suppress=True)

    local = sub.add_parser("local", help="the local stack").add_subparsers(dest="action", required=True)
    up = local.add_parser("up", help="run the whole pipeline locally until Ctrl-C")
    up.add_argument("--no-webhooks", action="store_true", help="emulator sends no webhooks (polling only)")
    up.add_argument("--render-seconds", type=float, default=1.0, help="emulator render time (default 1)")
    up.add_argument("--param", type=kv, action="append", default=[], metavar="NAME=VALUE", help="template parameter")
    up.add_argument(
        "--fault",
        type=kv,
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="emulator setting (EmulatorConfig field), e.g. rate_5xx=0.2",
    )
    up.add_argument("--visibility-timeout", type=int, default=None, help="override the queues' (seconds)")
    up.add_argument("--schedule-interval", type=float, default=60.0, help="sweeper period (seconds; 0 = off)")
    up.add_argument(
        "--function-log",
        type=Path,
        default=None,
        help=f"where the functions' logs go (default {DEFAULT_FUNCTION_LOG_NAME} next to the state file)",
    )
    up.add_argument(
        "--real-magic-hour",
        action="store_true",
        help="call the real Magic Hour API with MAGIC_HOUR_API_KEY: 5 credits per image uploaded, after a "
        "confirmation (polling only, asset upload). Without it: the emulator, whatever the environment holds",
    )
    up.add_argument("--yes", action="store_true", help="confirm --real-magic-hour's spend without asking")
    up.add_argument("--emulator", action="store_true", help=argparse.SUPPRESS)  # the default now; old scripts
    up.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the functions' logs (Powertools JSON, EMF) and debug logging of the local machinery here",
    )
    local.add_parser("down", help="stop a `cutout local up` running in the background (SIGTERM, then wait)")
    sub.add_parser("samples", help="regenerate samples/")
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _aws_error(exc: ClientError | BotoCoreError) -> str:
    """An AWS error as one line, with what to do where that is clear."""
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region R (or set AWS_REGION, or region in the profile)"
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: pass --profile P (or set AWS_PROFILE / the AWS_ACCESS_KEY_ID pair)"
    if isinstance(exc, EndpointConnectionError):
        return f"{_one_line(exc)}: is the stack (or the network) up?"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        op = exc.operation_name
        hint = "; check --profile (the role's permissions)" if "AccessDenied" in str(code) else ""
        return f"{op}: {code}: {' '.join(str(message).split())}{hint}" if message else f"{op}: {code}{hint}"
    return _one_line(exc)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except TargetError as exc:
        print(f"cutout: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except (ClientError, BotoCoreError) as exc:  # AccessDenied, throttling after retries, endpoint down, ...
        print(f"cutout: {_aws_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cutout: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug, not a user error: still one line, the traceback on request
        if os.environ.get("CUTOUT_DEBUG"):
            raise
        print(
            f"cutout: unexpected {type(exc).__name__}: {_one_line(exc)} (CUTOUT_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "local":
        return local_up(args) if args.action == "up" else local_down()
    if args.command == "samples":
        from cutout_dev.make_samples import generate

        for path in generate():
            print(path)
        return EXIT_OK
    query = getattr(args, "query", None)
    if query is not None:
        # Checked before anything runs: a typo in the expression costs no AWS call (and no half-done command).
        try:
            jmespath.compile(query)
        except JMESPathError as exc:
            raise TargetError(f"--query {query!r} is not a JMESPath expression: {_one_line(exc)}") from exc
    if getattr(args, "stackless", False):  # works on local files only (cutout presets check): no stack looked for
        stackless: int = args.run(args, None)
        return stackless
    target = resolve(args.stack, profile=args.profile, region=args.region)
    code: int = args.run(args, target)
    return code


if __name__ == "__main__":
    sys.exit(main())
