"""Fault-injection soak: hundreds of uploads through the local stack while everything that can go wrong does.

    python -m cutout_dev.soak                        # make soak: 320 uploads, the full fault mix, < 10 minutes
    python -m cutout_dev.soak --uploads 40 --quiet  # smaller, no progress lines

What is injected, what is checked and the last run: ``docs/soak.md``. The shared machinery (faults, waiting,
reconciliation, slot accounting) is ``cutout_dev.harness``.
"""

from cutout_dev.soak.config import DEFAULT_RESULTS, SoakConfig, SoakResult
from cutout_dev.soak.render import render
from cutout_dev.soak.run import main, run
from cutout_dev.soak.slots import account_slots

__all__ = ["DEFAULT_RESULTS", "SoakConfig", "SoakResult", "account_slots", "main", "render", "run"]
