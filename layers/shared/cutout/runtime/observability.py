"""One Logger and one Metrics object for the whole package (Powertools), shared by every handler.

Every log line carries `job_id`, `source_key`, `project_id` and `correlation_id` once they are known
(`bind_job`); handlers call `clear_job` between records so keys never leak into the next record.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="cutout")
metrics = Metrics(namespace="Cutout", service="cutout")

_JOB_KEYS = ("job_id", "source_key", "project_id", "correlation_id")


def bind_job(**keys: Any) -> None:
    # Per-invocation keys are Powertools' thread-safe (context-local) keys: the local stack runs concurrent
    # invocations as threads of one process, where process-wide `append_keys` would mix their job ids.
    values = {k: v for k, v in keys.items() if v is not None}
    if "job_id" in values:
        # The job id is the correlation id: S3-triggered flows have no standard one.
        values["correlation_id"] = str(values["job_id"])
    logger.thread_safe_append_keys(**values)


def clear_job() -> None:
    logger.thread_safe_remove_keys(list(_JOB_KEYS))


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def timing(name: str, milliseconds: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds)


__all__ = ["MetricUnit", "bind_job", "clear_job", "count", "logger", "metrics", "timing"]
