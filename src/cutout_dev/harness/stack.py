"""The local stack a harness runs on: webhooks on, polling and queue timings scaled down by the harness, moto in its
own process so the harness measures the pipeline rather than one shared interpreter."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from cutout_dev.harness.faults import INGEST_QUEUE
from cutout_dev.local_stack import LocalStackConfig


class Timings(Protocol):
    """The polling and visibility timings a harness scales down."""

    poll_first_delay_seconds: int
    poll_max_delay_seconds: int
    poll_max_wait_seconds: int
    ingest_visibility_seconds: int
    visibility_seconds: int


def harness_stack(
    timings: Timings,
    *,
    emulator: dict[str, Any],
    parameters: dict[str, str],
    schedule_interval_seconds: float,
    function_log: Path | None,
) -> LocalStackConfig:
    """The stack for a soak or a flood; `parameters` add to (or override) the template parameters set here."""
    return LocalStackConfig(
        webhooks=True,
        emulator=emulator,
        schedule_interval_seconds=schedule_interval_seconds,
        parameters={
            "PollFirstDelaySeconds": str(timings.poll_first_delay_seconds),
            "PollMaxDelaySeconds": str(timings.poll_max_delay_seconds),
            "PollMaxWaitSeconds": str(timings.poll_max_wait_seconds),
            "PollMaxAttempts": "100",
            **parameters,
        },
        visibility_timeout_seconds={
            INGEST_QUEUE: timings.ingest_visibility_seconds,
            "PollQueue": timings.visibility_seconds,
            "CompletionQueue": timings.visibility_seconds,
        },
        function_log=function_log,
        aws_in_own_process=True,
    )
