"""The plan's concurrency limit, per API key: who renders, who waits, and the highest it ever got.

Magic Hour publishes a concurrent-generation limit per plan (Creator 3, Pro 5, Business
unlimited) but not what happens beyond it, so the emulator models both answers peers give:

- ``queue``: a project beyond the limit stays ``queued`` in a FIFO and starts rendering only
  when a rendering project of the same key finishes (complete, error or canceled).
- ``reject``: a create while ``limit`` projects of the key are unfinished (queued or rendering)
  is refused with 429 before anything is created or charged.

A project stuck by the ``never_complete`` fault keeps its rendering slot for good, as a stuck
job on a real plan would: with ``limit`` stuck projects a key's queue never moves again (and in
``reject`` mode every create is refused). ``stalled()`` names the waiting projects that can no
longer start, so the emulator's quiescence check does not wait for them forever.

This class only counts ids and is not thread-safe by itself: ``EmulatorState`` calls it under
its lock, in the same critical section as the status change it accounts for.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


def key_id(api_key: str) -> str:
    """A stable, non-secret label for an API key (the key itself never appears in the state)."""
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class PlanCounts:
    unfinished: int  # queued + rendering
    rendering: int  # holding a plan slot (stuck projects included)
    queued: int  # unfinished but not rendering (in the queue_seconds phase or waiting for a slot)
    waiting_for_slot: int  # queued behind the limit, in the FIFO
    max_concurrent_rendering: int  # the highest `rendering` ever seen since the last reset


@dataclass(frozen=True)
class PlanStats:
    overall: PlanCounts
    by_key: dict[str, PlanCounts]  # keyed by key_id(api_key)

    def to_dict(self) -> dict[str, Any]:
        return {"overall": asdict(self.overall), "by_key": {k: asdict(v) for k, v in self.by_key.items()}}


@dataclass
class _KeyPlan:
    unfinished: set[str] = field(default_factory=set)
    rendering: set[str] = field(default_factory=set)
    waiting: deque[str] = field(default_factory=deque)
    max_rendering: int = 0

    def counts(self) -> PlanCounts:
        return PlanCounts(
            unfinished=len(self.unfinished),
            rendering=len(self.rendering),
            queued=len(self.unfinished) - len(self.rendering),
            waiting_for_slot=len(self.waiting),
            max_concurrent_rendering=self.max_rendering,
        )


class PlanSlots:
    """Slot accounting; ``limit`` 0 means unlimited (nothing waits, but rendering is still counted)."""

    def __init__(self) -> None:
        self._keys: dict[str, _KeyPlan] = {}
        self._owner: dict[str, str] = {}  # unfinished project id -> key_id
        self._rendering = 0
        self._max_rendering = 0

    def clear(self) -> None:
        self._keys.clear()
        self._owner.clear()
        self._rendering = 0
        self._max_rendering = 0

    def admit(self, key: str, project_id: str, limit: int, reject: bool) -> bool:
        """Register a new project; False (and nothing registered) when reject mode finds the key full."""
        plan = self._keys.setdefault(key, _KeyPlan())
        if reject and limit > 0 and len(plan.unfinished) >= limit:
            return False
        plan.unfinished.add(project_id)
        self._owner[project_id] = key
        return True

    def request_start(self, project_id: str, limit: int) -> bool:
        """True if the project took a rendering slot now; otherwise it joins its key's FIFO."""
        plan = self._plan_of(project_id)
        if plan is None:
            return False
        if not plan.waiting and self._has_room(plan, limit):
            self._take(plan, project_id)
            return True
        plan.waiting.append(project_id)
        return False

    def finish(self, project_id: str, limit: int) -> list[str]:
        """The project ended (complete/error/canceled): free its slot; return who starts now, in order."""
        plan = self._plan_of(project_id)
        if plan is None:
            return []  # already finished (or wiped by a reset)
        del self._owner[project_id]
        plan.unfinished.discard(project_id)
        if project_id in plan.rendering:
            plan.rendering.discard(project_id)
            self._rendering -= 1
        elif project_id in plan.waiting:  # O(n); not reached today (cancel rolls before the FIFO)
            plan.waiting.remove(project_id)
        return self._start_waiting(plan, limit)

    def drain(self, limit: int) -> list[str]:
        """After the limit changed: start whoever the new limit lets in."""
        started: list[str] = []
        for plan in self._keys.values():
            started += self._start_waiting(plan, limit)
        return started

    def stalled(self, is_stuck: Callable[[str], bool], limit: int) -> set[str]:
        """Waiting projects that can never start: every slot of their key is held by a stuck project."""
        out: set[str] = set()
        for plan in self._keys.values():
            full = limit > 0 and len(plan.rendering) >= limit
            if plan.waiting and full and all(is_stuck(pid) for pid in plan.rendering):
                out.update(plan.waiting)
        return out

    def stats(self) -> PlanStats:
        by_key = {key: plan.counts() for key, plan in self._keys.items()}
        overall = PlanCounts(
            unfinished=sum(c.unfinished for c in by_key.values()),
            rendering=self._rendering,
            queued=sum(c.queued for c in by_key.values()),
            waiting_for_slot=sum(c.waiting_for_slot for c in by_key.values()),
            max_concurrent_rendering=self._max_rendering,
        )
        return PlanStats(overall, by_key)

    def _plan_of(self, project_id: str) -> _KeyPlan | None:
        key = self._owner.get(project_id)
        return self._keys.get(key) if key is not None else None

    @staticmethod
    def _has_room(plan: _KeyPlan, limit: int) -> bool:
        return limit <= 0 or len(plan.rendering) < limit

    def _take(self, plan: _KeyPlan, project_id: str) -> None:
        plan.rendering.add(project_id)
        plan.max_rendering = max(plan.max_rendering, len(plan.rendering))
        self._rendering += 1
        self._max_rendering = max(self._max_rendering, self._rendering)

    def _start_waiting(self, plan: _KeyPlan, limit: int) -> list[str]:
        started: list[str] = []
        while plan.waiting and self._has_room(plan, limit):
            project_id = plan.waiting.popleft()
            self._take(plan, project_id)
            started.append(project_id)
        return started
