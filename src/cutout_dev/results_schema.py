"""The version each results file in ``bench/`` is written with, so a figure is never read from a file that
predates the code producing it: ``docs_figures`` reads a file only at its producer's current version and
``docs_figures --check`` fails on an older one. Bump a number whenever what its producer measures, judges or labels
changes (a check added, a figure's meaning changed); a file without the field is version 1.
"""

from __future__ import annotations

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
