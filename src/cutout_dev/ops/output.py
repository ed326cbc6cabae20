"""How ops commands print: a human table by default, ``--output json`` (or ``--json``) for scripts, and
``--query`` (JMESPath, as in the AWS CLI) to pick from the JSON. Exit statuses scripts can trust.

Commands build one JSON-able result (stable keys, plain values: the same document whatever the output mode)
and a function that draws it for a person; this module decides which one is printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

import jmespath
from rich.console import Console
from rich.table import Table
from rich.text import Text

EXIT_OK = 0
EXIT_ERROR = 1  # the command failed or refused (bad arguments, AWS error, nothing found, a retry refused)
EXIT_ATTENTION = 2  # it worked, and a person is needed (a DLQ not empty, an alarm firing, a backfill budget-capped)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)

# The one table every command follows (`cutout --help` and docs/cli.md print it).
EXIT_CODES = (
    (EXIT_OK, "it worked; nothing needs a person"),
    (
        EXIT_ERROR,
        "an error, or refused (bad arguments, stack or object not found, AWS error, a retry or backfill "
        "refused or declined); one line on stderr says what and what to do",
    ),
    (
        EXIT_ATTENTION,
        "it worked, and a person is needed: status found a DLQ not empty or an alarm firing; "
        "backfill stopped at today's budget",
    ),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); a backfill goes on where it stopped when run again"),
)

# Tables are not squeezed to 80 columns when piped (cron mail, CI logs): rich would otherwise wrap every row.
PIPE_WIDTH = 160


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"not JSON-able: {type(value).__name__}")


@dataclass
class Output:
    format: str = "table"  # "table" | "json"
    query: str | None = None
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    @classmethod
    def from_args(cls, args: Any) -> Output:
        """From the CLI's global options (``--output``, ``--json``, ``--query``)."""
        return cls(format=getattr(args, "output", None) or "table", query=getattr(args, "query", None))

    @property
    def json(self) -> bool:
        return self.format == "json" or self.query is not None

    def console(self) -> Console:
        is_tty = self.stream.isatty()
        return Console(file=self.stream, width=None if is_tty else PIPE_WIDTH, soft_wrap=False, highlight=False)

    def emit(self, data: Any, human: Callable[[Console], None]) -> None:
        """Print ``data`` as JSON (``--output json``/``--query``) or let ``human`` draw it."""
        if self.json:
            if self.query is not None:
                document = json.loads(json.dumps(data, default=_plain))
                data = jmespath.search(self.query, document)
                if data is None and isinstance(document, dict) and self.query.lstrip().startswith("["):
                    # As in the AWS CLI the rows are wrapped: a query written for a bare list selects nothing.
                    lists = [k for k, v in document.items() if isinstance(v, list)]
                    key = lists[0] if lists else next(iter(document), "key")
                    self.note(
                        f'cutout: --query: the JSON is an object ({{"{key}": ...}}): start from a key, e.g. {key}[]'
                    )
            self.stream.write(json.dumps(data, indent=2, ensure_ascii=False, default=_plain) + "\n")
            self.stream.flush()
            return
        console = self.console()
        if console.is_terminal:
            human(console)
            return
        # Piped: the same drawing without the padding rich adds to the right of every table cell.
        with console.capture() as captured:
            human(console)
        self.stream.write("\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A message for the person at the terminal (stderr: never mixed into the JSON on stdout)."""
        self.err.write(text + "\n")
        self.err.flush()


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    no_wrap: Collection[str] = (),
) -> Table:
    """Columns fold long values (keys, messages); those in ``no_wrap`` (timestamps, ids) are never broken."""
    out = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, box=None, header_style="bold")
    rows = [list(row) for row in rows]
    for i, column in enumerate(columns):
        if column in no_wrap:  # as wide as its longest value, so rich squeezes the other columns instead
            widest = max([len(column), *(len("" if row[i] is None else str(row[i])) for row in rows)])
            out.add_column(column, no_wrap=True, min_width=widest)
        else:
            out.add_column(column, overflow="fold")
    for row in rows:
        # Text, not str: values are keys and messages from uploads, and rich would read "[...]" as markup.
        out.add_row(*(Text("" if v is None else str(v)) for v in row))
    return out


def fields(rows: Iterable[tuple[str, Any]]) -> Table:
    """A two-column "name  value" block (values taken literally, as in ``table``)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(name, Text("" if value is None else str(value)))
    return grid


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(seconds: float | None) -> str:
    """``95`` → ``1m35s``; ``90061`` → ``1d1h``: how long, for a person."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if s >= size:
            return f"{s // size}{unit}{(s % size) // sub_size}{sub}"
    return f"{s}s"
