"""Sweeper function (scheduled): resolves jobs stuck non-terminal past the poll limit; emits StuckJobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutout.completion import Sweeper
from cutout.config import get_settings
from cutout.observability import logger, metrics

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_settings()
sweeper = Sweeper(settings)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return sweeper.sweep()
