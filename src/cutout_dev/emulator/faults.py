"""Deterministic fault dice.

Each fault kind gets its own RNG stream derived from the seed, so enabling one fault does
not shift the rolls of another and a seeded run replays the same faults in the same order.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class FaultDice:
    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    def _stream(self, kind: str) -> random.Random:
        rng = self._streams.get(kind)
        if rng is None:
            rng = random.Random(f"{self._seed}:{kind}") if self._seed is not None else random.Random()
            self._streams[kind] = rng
        return rng

    def roll(self, kind: str, rate: float) -> bool:
        """True with probability `rate` (a rate of 0 consumes no randomness, so it never shifts a stream)."""
        if rate <= 0.0:
            return False
        with self._lock:
            return self._stream(kind).random() < rate

    def choice(self, kind: str, options: Sequence[T]) -> T:
        with self._lock:
            return self._stream(kind).choice(options)
