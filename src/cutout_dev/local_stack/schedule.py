"""EventBridge schedule rules that target a function, run on a local interval.

``rate(5 minutes)`` is too slow to watch locally, so the interval is a local setting; the event is the
"Scheduled Event" EventBridge sends (or the target's constant ``Input``, as EventBridge would send it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from cutout_dev.local_stack.aws import REGION
from cutout_dev.local_stack.intrinsics import ACCOUNT_ID
from cutout_dev.local_stack.lambda_runtime import LocalFunction
from cutout_dev.local_stack.template import ScheduleEvent

log = logging.getLogger(__name__)


def scheduled_event(rule_name: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


class ScheduleRunner:
    """Invokes one function every ``interval_seconds`` (first run after one interval, like a fresh rule)."""

    def __init__(self, schedule: ScheduleEvent, function: LocalFunction, interval_seconds: float) -> None:
        self.schedule = schedule
        self.function = function
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"schedule-{self.schedule.rule_id}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.function.timeout_seconds + 5)

    def run_once(self) -> Any:
        """Invoke now (also what ``cutout`` tooling uses to trigger a sweep on demand)."""
        event: Any = json.loads(self.schedule.input) if self.schedule.input else scheduled_event(self.schedule.rule_id)
        self.runs += 1
        return self.function.invoke(event)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            # Already logged by the runtime; a failed scheduled (async) invoke just fails, the next one runs.
            with contextlib.suppress(Exception):
                self.run_once()
