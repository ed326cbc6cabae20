"""Webhook function (Lambda Function URL): verify Magic Hour's signature, enqueue, answer 2xx fast.

Authentication is the HMAC signature, checked here before anything else; the heavy work (download, S3 write)
happens behind the completion queue so the answer stays well inside Magic Hour's 10 s.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from cutout import aws_clients, secrets
from cutout.completion import CompletionMessage
from cutout.config import get_settings
from cutout.job_store import JobStore
from cutout.magic_hour import MalformedResponse, parse_project
from cutout.models import JobStatus, job_id_from_project_name, utc_now
from cutout.observability import bind_job, count, logger, metrics
from cutout.webhook_auth import WebhookRejected, verify

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_settings()
store = JobStore(settings.jobs_table)
REPLAY_WINDOW_SECONDS = 600  # > the 300 s timestamp tolerance, so a replay inside the window is caught
EVENT_TYPES = frozenset({"image.started", "image.completed", "image.errored"})


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode() if isinstance(body, str) else b""


def _remember(signature: str) -> bool:
    """True the first time this signed delivery is seen; False for a replay."""
    from datetime import timedelta

    return store.counter_add(f"webhook#{signature}", 1, 1, utc_now() + timedelta(seconds=REPLAY_WINDOW_SECONDS))


def _forget(signature: str) -> None:
    aws_clients.dynamodb().delete_item(TableName=settings.jobs_table, Key={"job_id": {"S": f"webhook#{signature}"}})


def handle(event: dict[str, Any]) -> dict[str, Any]:
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")
    if method != "POST":
        return _answer(405, {"error": "method not allowed"})
    raw = _raw_body(event)
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    try:
        signature = verify(headers, raw, secrets.webhook_secret(settings.webhook_secret_id))
    except WebhookRejected as exc:
        count("WebhookRejected")
        logger.warning("webhook rejected", extra={"reason": exc.reason, "status": exc.status})
        return _answer(exc.status, {"error": exc.reason})
    try:
        doc = json.loads(raw)
        event_type = doc["type"]
        # The schema names it `payload`; one old example says `object` (magichour-api.md §5).
        project = parse_project(doc.get("payload", doc.get("object")))
    except (ValueError, KeyError, TypeError, MalformedResponse) as exc:
        count("WebhookMalformed")
        logger.warning("webhook body malformed", extra={"reason": str(exc)[:200]})
        return _answer(400, {"error": "malformed body"})
    job_id = job_id_from_project_name(project.name)
    bind_job(project_id=project.id, job_id=job_id)
    if event_type not in EVENT_TYPES or job_id is None:
        # Webhooks are account-wide: other tools' projects and other event families are not ours to handle.
        count("WebhookIgnored")
        logger.info("webhook not for a cutout job; ignored", extra={"event_type": event_type})
        return _answer(200, {"ignored": True})
    if event_type == "image.started" and store.advance(
        job_id, JobStatus.RENDERING, expect_project_id=project.id, require_project=True
    ):
        # The usual case: one forward-only conditional update in place, no trip through the queue. When it does
        # not apply (the job is not recorded yet, or is an ambiguous create this project can resolve, or is
        # already further on), the event goes to the finalizer like the others, which knows what to do.
        count("WebhookStarted")
        return _answer(202, {"accepted": True})
    if not _remember(signature):
        count("WebhookReplayed")
        logger.warning("webhook replay rejected")
        return _answer(409, {"error": "replayed delivery"})
    try:
        aws_clients.sqs().send_message(
            QueueUrl=settings.completion_queue_url,
            MessageBody=CompletionMessage(
                project=project.raw, source="webhook", event_type=event_type, job_id=job_id
            ).to_json(),
        )
    except Exception:
        _forget(signature)  # let Magic Hour's retry through
        logger.exception("could not enqueue the webhook")
        return _answer(500, {"error": "try again"})
    count("WebhookAccepted")
    return _answer(202, {"accepted": True})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event if isinstance(event, dict) else {})
