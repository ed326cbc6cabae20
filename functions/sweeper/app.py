"""Sweeper function (scheduled): resolves jobs stuck non-terminal past the poll limit (StuckJobs), late-checks
recently timed-out jobs, and — on its one-minute admission schedule (`{"task": "admission"}`) — reconciles the
in-flight slots and wakes the dispatcher for jobs that wait beside a free slot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.domain.models import Clock, utc_now
from cutout.runtime import time_budget
from cutout.runtime.config import Settings, get_settings
from cutout.runtime.observability import logger, metrics
from cutout.use_cases.collaborators import collaborators, job_ending
from cutout.use_cases.sweep import Sweeper

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

sweeper: Sweeper


def configure(settings: Settings | None = None, *, clock: Clock = utc_now) -> Sweeper:
    """Build this function's domain service (at import: the cold start). The seam for the local stack, the soak
    (a clock running ahead, so "stuck past the limit" is reached now) and tests."""
    global sweeper  # noqa: PLW0603 - the one documented place that (re)builds the module's service
    common = collaborators(settings or get_settings(), clock=clock)
    sweeper = Sweeper(common, job_ending(common))
    return sweeper


configure()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The sweep's Magic Hour calls stop when too little of the invocation is left for one more (time_budget.py).
    with time_budget.until(time_budget.deadline_of(context)):
        return _run(event)


def _run(event: Any) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("task") == "admission":
        result = sweeper.tick()
        if result is None:
            return {}
        return {"in_flight": result.in_flight, "waiting": result.waiting, "repaired": len(result.repaired)}
    return sweeper.sweep()
