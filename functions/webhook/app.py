"""Webhook function (Lambda Function URL): Magic Hour's signed callbacks → the completion queue, answered fast.

The adapter only translates the Function URL event into a delivery and the domain's answer into a response;
authentication, replay refusal and routing live in cutout.use_cases.webhook.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from cutout.domain.models import Clock, utc_now
from cutout.runtime.config import Settings, get_settings
from cutout.runtime.observability import logger, metrics
from cutout.use_cases.collaborators import collaborators
from cutout.use_cases.webhook import Answer, Delivery, WebhookReceiver

if TYPE_CHECKING:  # type-only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext

receiver: WebhookReceiver


def configure(settings: Settings | None = None, *, clock: Clock = utc_now) -> WebhookReceiver:
    """Build this function's domain service (at import: the cold start); the seam for the local stack and tests."""
    global receiver  # noqa: PLW0603 - the one documented place that (re)builds the module's service
    receiver = WebhookReceiver(collaborators(settings or get_settings(), clock=clock))
    return receiver


configure()


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode() if isinstance(body, str) else b""


def _delivery(event: dict[str, Any]) -> Delivery:
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    return Delivery(method=str(method), headers=headers, body=_raw_body(event))


def _response(answer: Answer) -> dict[str, Any]:
    return {
        "statusCode": answer.status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(answer.body),
    }


def handle(event: dict[str, Any]) -> dict[str, Any]:
    return _response(receiver.receive(_delivery(event)))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event if isinstance(event, dict) else {})
