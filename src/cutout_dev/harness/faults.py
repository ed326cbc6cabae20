"""The pipeline faults a harness injects into a running local stack: S3 events delivered twice, submit workers
killed between the Magic Hour create and the DynamoDB update, and the short submit lease that makes a killed
worker's claim stale in time; plus the sweeper run with its clock ahead for jobs nothing else will end."""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cutout_dev.local_stack import LocalStack

SUBMIT = "SubmitFunction"
SWEEPER = "SweeperFunction"
# The functions that reconcile in-flight slots, and so read the submit lease (reconcile.py: a `submitting` claim
# older than the lease has lost its worker). The template sets the submit's and the others default to the same
# value (a template test checks it); a harness that shortens it must shorten it for all of them, or a slot held by
# a killed worker is kept for the template's 120 s where the submit already gave up after the short lease.
LEASE_READERS = ("PollFunction", "FinalizeFunction", SWEEPER)
INGEST_QUEUE = "IngestQueue"


class FaultSettings(Protocol):
    """What the injection reads from a harness's configuration."""

    seed: int
    submit_lease_seconds: int
    poll_max_wait_seconds: int


class WorkerKilled(BaseException):
    """Lambda killing the sandbox mid-invocation: not an Exception, so no `except Exception` cleanup runs."""


@dataclass
class UploadRecord:
    index: int
    key: str
    etag: str
    job_id: str
    duplicate_event: bool
    kill_target: bool


@dataclass
class Injected:
    """What the harness did to the pipeline, as it happened."""

    duplicate_events: list[str] = field(default_factory=list)  # job ids whose event was sent twice
    killed: list[str] = field(default_factory=list)  # job ids whose worker died after the create
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def short_lease(function: Any, cfg: FaultSettings) -> Any:
    """The settings the template gave `function` (its cold start's), with the harness's short submit lease."""
    return function.configure().settings._replace(submit_lease_seconds=cfg.submit_lease_seconds)


def inject(stack: LocalStack, cfg: FaultSettings, uploads: dict[str, UploadRecord], injected: Injected) -> None:
    """Wire the harness's faults into the running stack: duplicate S3 events, killed workers, a short lease."""
    by_job = {u.job_id: u for u in uploads.values()}

    def kill_after_create(job_id: str, project_id: str) -> None:
        upload = by_job.get(job_id)
        if upload is not None and upload.kill_target:
            with injected.lock:
                first = job_id not in injected.killed
                if first:
                    injected.killed.append(job_id)
            if first:
                raise WorkerKilled(f"worker killed after creating {project_id} for {job_id}")

    submit = stack.functions[SUBMIT]
    submit.configure(settings=short_lease(submit, cfg), after_create=kill_after_create)
    for name in LEASE_READERS:
        stack.functions[name].configure(settings=short_lease(stack.functions[name], cfg))
    stack.functions[SUBMIT].fault = _duplicate_events(stack, cfg, uploads, injected)


def _event_key(record: Any) -> Any:
    """The S3 key of one ingest record (an EventBridge "Object Created" event in an SQS body), if it is one."""
    try:
        doc = json.loads(record.get("body", ""))
        return doc["detail"]["object"]["key"]
    except (ValueError, KeyError, TypeError):
        return None


def _duplicate_events(
    stack: LocalStack, cfg: FaultSettings, uploads: dict[str, UploadRecord], injected: Injected
) -> Any:
    """The submit's fault hook: send the chosen uploads' event bodies to the ingest queue a second time."""
    sqs = stack.client("sqs")
    ingest_url = stack.endpoints.queues[INGEST_QUEUE]
    dup_rng = random.Random(f"{cfg.seed}:duplicate-delay")
    by_key = {u.key: u for u in uploads.values()}

    def duplicate_events(event: Any) -> None:
        for record in (event or {}).get("Records", []) if isinstance(event, dict) else []:
            key = _event_key(record)
            upload = by_key.get(key) if key is not None else None
            if upload is None or not upload.duplicate_event:
                continue
            with injected.lock:
                if upload.job_id in injected.duplicate_events:
                    continue
                injected.duplicate_events.append(upload.job_id)
                delay = dup_rng.choice((0, 0, 1, 3, 6))
            # The very same body again: what an at-least-once S3/EventBridge delivery looks like to the queue.
            sqs.send_message(QueueUrl=ingest_url, MessageBody=record["body"], DelaySeconds=delay)

    return duplicate_events


@contextlib.contextmanager
def clock_ahead(stack: LocalStack, seconds: float, cfg: FaultSettings) -> Iterator[None]:
    """Give the sweeper a clock `seconds` ahead, so "stuck past the limit" is reached now, not in minutes."""

    def shifted() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=seconds)

    sweeper = stack.functions[SWEEPER]
    settings = short_lease(sweeper, cfg)
    sweeper.configure(settings=settings, clock=shifted)
    try:
        yield
    finally:
        sweeper.configure(settings=settings)


def run_sweeper(stack: LocalStack, cfg: FaultSettings) -> Any:
    """One sweeper invocation with its clock past every bound: ends the jobs nothing else will."""
    with clock_ahead(stack, cfg.poll_max_wait_seconds + 600 + 60, cfg):
        return stack.functions[SWEEPER].invoke({"source": "soak", "detail-type": "Scheduled Event"})
