"""boto3 clients, created once per execution environment on first use.

Lazily created so a handler that never touches a service never pays for its client. boto3 honours
AWS_ENDPOINT_URL, which is how the local stack and the tests point everything at moto server.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient


# boto3's default session is not thread-safe while it creates clients. Lambda runs one invocation per
# process, but the local stack and tests run concurrent invocations as threads of one process.
_lock = threading.Lock()


def _client(service: str, **config: Any) -> Any:
    import boto3

    with _lock:
        return boto3.client(service, config=_config(**config))  # type: ignore[call-overload]


def _config(**overrides: Any) -> Any:
    from botocore.config import Config

    # Bounded timeouts: a hung AWS call must fail inside the function timeout and go back to the queue.
    base: dict[str, Any] = {
        "connect_timeout": 3,
        "read_timeout": 10,
        "retries": {"max_attempts": 4, "mode": "standard"},
    }
    base.update(overrides)
    return Config(**base)


@cache
def s3() -> S3Client:
    # SigV4 everywhere; botocore picks path-style addressing for custom endpoints such as moto's.
    client: S3Client = _client("s3", signature_version="s3v4", s3={"addressing_style": "auto"})
    return client


@cache
def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


@cache
def sqs() -> SQSClient:
    client: SQSClient = _client("sqs")
    return client


@cache
def events() -> EventBridgeClient:
    client: EventBridgeClient = _client("events")
    return client


@cache
def secretsmanager() -> SecretsManagerClient:
    client: SecretsManagerClient = _client("secretsmanager")
    return client


def reset() -> None:
    """Forget every client (tests switch endpoints between cases)."""
    for factory in (s3, dynamodb, sqs, events, secretsmanager):
        factory.cache_clear()
