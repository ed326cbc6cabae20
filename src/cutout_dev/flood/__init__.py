"""Flood: thousands of distinct uploads dropped into the local stack at once, against a Magic Hour plan limit.

    python -m cutout_dev.flood                       # make flood: 2,000 uploads, both plan behaviours, faults on
    python -m cutout_dev.flood --uploads 300 --mode reject --no-faults

Each plan behaviour (Magic Hour queues the excess, or rejects it with 429) gets a fresh local stack; the soak's
fault mix and reconciliation (``cutout_dev.harness``) plus the flood's own measurements and checks. What it
measures, why the defaults are what they are, and the runs so far: ``docs/scale.md``.
"""

from cutout_dev.flood.config import DEFAULT_RESULTS, FLOOD_FAULTS, MODES, FloodConfig, FloodResult
from cutout_dev.flood.instruments import CallCounter, SlotSampler
from cutout_dev.flood.judge import judge
from cutout_dev.flood.measure import max_open, measure, peak
from cutout_dev.flood.render import render
from cutout_dev.flood.run import main, run, run_mode

__all__ = [
    "DEFAULT_RESULTS",
    "FLOOD_FAULTS",
    "MODES",
    "CallCounter",
    "FloodConfig",
    "FloodResult",
    "SlotSampler",
    "judge",
    "main",
    "max_open",
    "measure",
    "peak",
    "render",
    "run",
    "run_mode",
]
