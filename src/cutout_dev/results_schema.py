"""The results files in ``bench/``: the version each is written with, and reading them at it, so a figure is never
read from a file that predates the code producing it: ``docs_figures`` reads a file only at its producer's current
version and ``docs_figures --check`` fails on an older one. Bump a number whenever what its producer measures,
judges or labels changes (a check added, a figure's meaning changed); a file without the field is version 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIELD = "schema"
# make bench (bench/results.json): 2 = every cost figure labelled measured or modelled, the idle stack's fixed
# monthly cost, the end-to-end part given a slot per concurrent upload.
BENCH = 2
# make soak (bench/soak-results.json): 2 = the forced sweep, the DLQs and each slot repair judged; a refused
# s3:ListBucket counted by the IAM check.
SOAK = 2
# make flood (bench/flood-*.json): 2 = the soak's new checks, and in reject mode the plan's refusals judged.
FLOOD = 2
# What each results file is written by: its version and the command that rewrites it.
PRODUCERS: dict[str, tuple[int, str]] = {
    "results.json": (BENCH, "make bench"),
    "soak-results.json": (SOAK, "make soak"),
    "flood-results.json": (FLOOD, "make flood"),
    "flood-queue-final.json": (FLOOD, "python -m cutout_dev.flood --mode queue --results bench/flood-queue-final.json"),
    "flood-nofaults.json": (
        FLOOD,
        "python -m cutout_dev.flood --uploads 250 --mode queue --no-faults --results bench/flood-nofaults.json",
    ),
}


def version_of(doc: dict[str, Any]) -> int:
    return int(doc.get(FIELD, 1))


def stamped(doc: dict[str, Any], version: int) -> dict[str, Any]:
    """`doc` with its producer's version first, as the file is written."""
    return {FIELD: version, **{k: v for k, v in doc.items() if k != FIELD}}


class Missing(LookupError):
    """A results file a region needs is absent, or predates the code that writes it."""


class Results:
    """The results files of one ``bench/`` directory, read once each. A file written by an older version of its
    producer (below) is not read: its figures would describe code that no longer runs. It is listed in
    ``outdated`` instead, and ``--check`` fails on it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, Any] = {}
        self.outdated: dict[str, str] = {}  # file name -> why it was not read

    def get(self, name: str) -> Any:
        if name not in self._cache:
            path = self.directory / name
            doc = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
            version, command = PRODUCERS.get(name, (1, "its producer"))
            if isinstance(doc, dict) and version_of(doc) < version:
                self.outdated[name] = (
                    f"bench/{name} was written by an older version of its producer "
                    f"(schema {version_of(doc)}, the code writes {version}): rerun `{command}`"
                )
                doc = None
            self._cache[name] = doc
        return self._cache[name]

    def need(self, name: str) -> Any:
        doc = self.get(name)
        if doc is None:
            command = PRODUCERS.get(name, (1, "its producer"))[1]
            raise Missing(self.outdated.get(name) or f"bench/{name} is missing: run `{command}`")
        return doc
