"""The dead-letter queues after a run: every message in them, and the upload each one belongs to."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cutout.domain.models import job_id_from_project_name

from cutout_dev.local_stack import LocalStack


def dlq_contents(stack: LocalStack) -> dict[str, list[str]]:
    """Every message body in every DLQ (made visible again right away, so a redrive can move them)."""
    sqs = stack.client("sqs")
    contents: dict[str, list[str]] = {}
    for dlq in stack.dead_letter_queues():
        url = stack.endpoints.queues[dlq]
        bodies: list[str] = []
        handles: list[str] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
            ).get("Messages", [])
            if not batch:
                break
            bodies.extend(m["Body"] for m in batch)
            handles.extend(m["ReceiptHandle"] for m in batch)
        for handle in handles:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        contents[dlq] = bodies
    return contents


def dlq_job_id(body: str, job_by_key: Mapping[str, str]) -> str | None:
    """Map a dead-lettered message back to the upload's job id (ingest: the S3 key; others: the job id)."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("job_id"), str):
        return str(doc["job_id"])
    detail = doc.get("detail")
    if isinstance(detail, dict):
        key = (detail.get("object") or {}).get("key")
        if isinstance(key, str) and key in job_by_key:
            return job_by_key[key]
    project = doc.get("project")
    if isinstance(project, dict):
        return job_id_from_project_name(project.get("name"))
    return None


def dlq_by_job(dlq: dict[str, list[str]], job_by_key: Mapping[str, str]) -> tuple[dict[str, list[str]], list[str]]:
    """({job id: the DLQs holding a message of it}, the messages no upload could be found for)."""
    dlq_jobs: dict[str, list[str]] = {}
    unmapped: list[str] = []
    for queue, bodies in dlq.items():
        for body in bodies:
            jid = dlq_job_id(body, job_by_key)
            if jid is None:
                unmapped.append(f"{queue}: {body[:200]}")
            else:
                dlq_jobs.setdefault(jid, []).append(queue)
    return dlq_jobs, unmapped
