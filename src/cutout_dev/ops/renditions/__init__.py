"""``cutout renditions rebuild s3://bucket/prefix`` — re-render the renditions after the presets change, for free.

    plan      list the uploads under the prefix (ListObjectsV2; the prefix relative to the input prefix), read the
              job each one is (BatchGetItem on the ids the submit derives), keep those with a cutout, and pick for
              each the presets the stored document picks now (rules on its key, then the names its upload asked
              for), narrowed to --preset
    estimate  cutouts, renditions per preset, and 0 credits: a rendition is made from the stored cutout
    send      one render request per job, {"cutout": "render", "job_id", "presets"}, to the renditions queue
              (SendMessageBatch); a checkpoint after every batch, so a rerun after Ctrl-C goes on where it stopped

Nothing here calls Magic Hour, and a request sent twice only renders the same objects again.
"""

from __future__ import annotations

from cutout_dev.ops.renditions.cli import add_parser, run
from cutout_dev.ops.renditions.command import Options, RebuildTarget, run_rebuild
from cutout_dev.ops.renditions.plan import Candidate, Planner, RebuildPlan, key_prefix, make_plan

__all__ = [
    "Candidate",
    "Options",
    "Planner",
    "RebuildPlan",
    "RebuildTarget",
    "add_parser",
    "key_prefix",
    "make_plan",
    "run",
    "run_rebuild",
]
