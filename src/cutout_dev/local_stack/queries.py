"""What tests and tools read from a running local stack: the job records, queue depths, the dead-letter queues
and their redrive, and whether the pipeline is quiet."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from cutout_dev.local_stack.config import Endpoints, Uploaded
from cutout_dev.local_stack.resources import DeployedResources
from cutout_dev.local_stack.sqs_poller import SqsPoller
from cutout_dev.local_stack.template import TranslatedTemplate


class RunningStack(Protocol):
    """What the queries read of a running stack (``LocalStack``): its clients, resources, pollers and emulator."""

    emulator: Any
    pollers: list[SqsPoller]
    resources: DeployedResources | None
    translated: TranslatedTemplate | None

    @property
    def endpoints(self) -> Endpoints: ...

    def client(self, service: str) -> Any: ...


class StackQueries:
    """What tests and tools read from a running stack; ``LocalStack`` holds one and answers these for it."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack

    def jobs(self) -> list[dict[str, Any]]:
        """Every job record, plain Python values (the table's other items — ``budget#…``, ``webhook#…`` — are
        left out), deserialised by the domain's own reader."""
        from cutout.domain.job import plain_item

        pages = self.stack.client("dynamodb").get_paginator("scan").paginate(TableName=self.stack.endpoints.table)
        items = (plain_item(raw) for page in pages for raw in page.get("Items", []))
        return [item for item in items if is_job_record(item)]

    def job_statuses(self) -> dict[str, str]:
        """job id → status of every job record: a scan projected to the two attributes, for progress loops that
        look often (a whole record costs moto ~40 attributes to serialise, and the flood scans thousands)."""
        pages = (
            self.stack.client("dynamodb")
            .get_paginator("scan")
            .paginate(
                TableName=self.stack.endpoints.table,
                ProjectionExpression="job_id, #s",
                ExpressionAttributeNames={"#s": "status"},
            )
        )
        statuses: dict[str, str] = {}
        for page in pages:
            for raw in page.get("Items", []):
                job_id = raw.get("job_id", {}).get("S", "#")
                if is_job_record({"job_id": job_id}):
                    statuses[job_id] = raw.get("status", {}).get("S", "")
        return statuses

    def job(self, job_id: str) -> dict[str, Any] | None:
        """One job record (consistent read), or None."""
        from cutout.domain.job import plain_item

        raw = (
            self.stack.client("dynamodb")
            .get_item(TableName=self.stack.endpoints.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
            .get("Item")
        )
        return None if raw is None else plain_item(raw)

    def wait_for_terminal(
        self, jobs: Iterable[str | Uploaded], timeout: float = 30.0, interval: float = 0.2
    ) -> dict[str, dict[str, Any]]:
        """Wait until every job (job id, source key or ``Uploaded``) has a terminal record; return them by id.

        Raises TimeoutError listing the ones still open.
        """
        from cutout.domain.models import TERMINAL as JOB_TERMINAL

        wanted_ids: set[str] = set()
        wanted_keys: set[str] = set()
        for item in jobs:
            if isinstance(item, Uploaded):
                wanted_ids.add(item.job_id)
            elif len(item) == 32 and all(c in "0123456789abcdef" for c in item):
                wanted_ids.add(item)
            else:
                wanted_keys.add(item)
        deadline = time.monotonic() + timeout
        while True:
            records = self.jobs()
            found: dict[str, dict[str, Any]] = {}
            for rec in records:
                if rec.get("job_id") in wanted_ids or rec.get("source_key") in wanted_keys:
                    found[str(rec["job_id"])] = rec
            done_ids = {i for i in wanted_ids if found.get(i, {}).get("status") in JOB_TERMINAL}
            done_keys = {
                k
                for k in wanted_keys
                if any(r.get("source_key") == k and r.get("status") in JOB_TERMINAL for r in found.values())
            }
            if done_ids == wanted_ids and done_keys == wanted_keys:
                return found
            if time.monotonic() >= deadline:
                pending = sorted((wanted_ids - done_ids) | (wanted_keys - done_keys))
                states = {k: v.get("status") for k, v in found.items()}
                raise TimeoutError(f"not terminal after {timeout}s: {pending} (records: {states})")
            time.sleep(interval)

    def queue_depths(self) -> dict[str, int]:
        """Visible + in-flight + delayed messages per queue (logical id)."""
        sqs = self.stack.client("sqs")
        depths: dict[str, int] = {}
        for logical_id, url in self.stack.endpoints.queues.items():
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            depths[logical_id] = sum(
                int(attrs.get(name, 0))
                for name in (
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                )
            )
        return depths

    def dead_letter_queues(self) -> dict[str, str]:
        """DLQ logical id → source queue logical id, from the template's redrive policies."""
        assert self.stack.translated is not None
        assert self.stack.resources is not None
        pairs: dict[str, str] = {}
        for logical_id, res in self.stack.translated.resources_of_type("AWS::SQS::Queue").items():
            policy = self.stack.resources.resolver.resolve(res.get("Properties", {}).get("RedrivePolicy") or {})
            target = policy.get("deadLetterTargetArn") if isinstance(policy, Mapping) else None
            for dlq_id in self.stack.endpoints.queues:
                if target and self.stack.resources.get_att(dlq_id, "Arn") == target:
                    pairs[dlq_id] = logical_id
        return pairs

    def redrive(self, dlq: str, destination: str | None = None, limit: int | None = None) -> int:
        """Move messages from a DLQ back to its source queue (what StartMessageMoveTask does; moto lacks it).

        ``dlq``/``destination`` are logical ids or URLs; the destination defaults to the queue whose redrive
        policy names the DLQ. Returns how many messages moved.
        """
        queues = self.stack.endpoints.queues
        dlq_url = queues.get(dlq, dlq)
        dlq_id = next((k for k, v in queues.items() if v == dlq_url), dlq)
        if destination is None:
            destination = self.dead_letter_queues().get(dlq_id)
            if destination is None:
                raise ValueError(f"{dlq} is not the dead-letter queue of any queue in the template")
        dest_url = queues.get(destination, destination)
        return redrive_messages(self.stack.client("sqs"), dlq_url, dest_url, limit=limit)

    def quiescent(self) -> bool:
        """No queued/in-flight messages in the source queues, no poller busy, emulator idle."""
        return not self.still_moving()

    def still_moving(self) -> list[str]:
        """What keeps the stack from being quiescent, one phrase each ([] when it is): for a report that fails."""
        dlqs = set(self.dead_letter_queues())
        moving = [
            f"{q}: {n} message(s) queued, in flight or delayed"
            for q, n in self.queue_depths().items()
            if n and q not in dlqs
        ]
        moving += [f"{p.function.logical_id} busy on a batch" for p in self.stack.pollers if p.busy]
        if self.stack.emulator is not None and not self.stack.emulator.engine.quiescent():
            moving.append("the Magic Hour emulator still rendering or delivering a webhook")
        return moving


def redrive_messages(sqs: Any, source_url: str, dest_url: str, *, limit: int | None = None) -> int:
    """Receive from ``source_url``, send each message (body + attributes) to ``dest_url``, then delete it."""
    moved = 0
    while limit is None or moved < limit:
        batch = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=10 if limit is None else min(10, limit - moved),
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not batch:
            return moved
        for message in batch:
            kwargs: dict[str, Any] = {"QueueUrl": dest_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                kwargs["MessageAttributes"] = message["MessageAttributes"]
            sqs.send_message(**kwargs)
            sqs.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def is_job_record(item: Mapping[str, Any]) -> bool:
    from cutout.store.counters import is_counter

    return not is_counter(str(item.get("job_id", "#")))


def job_id_for(bucket: str, key: str, etag: str) -> str:
    """The job id the submit function derives for an object (the domain package's own function)."""
    from cutout.domain.models import job_id_for as domain_job_id_for

    return domain_job_id_for(bucket, key, etag)
