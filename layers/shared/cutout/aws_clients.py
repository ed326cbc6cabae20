"""boto3 clients, created once per execution environment on first use.

Lazily created so a handler that never touches a service never pays for its client. boto3 honours
AWS_ENDPOINT_URL, which is how the local stack and the tests point everything at moto server.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


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
    import boto3

    # SigV4 + virtual/path addressing chosen by botocore; path style keeps presigned URLs valid on moto.
    return boto3.client("s3", config=_config(signature_version="s3v4", s3={"addressing_style": "auto"}))


@cache
def dynamodb() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb", config=_config())


@cache
def sqs() -> SQSClient:
    import boto3

    return boto3.client("sqs", config=_config())


@cache
def events() -> EventBridgeClient:
    import boto3

    return boto3.client("events", config=_config())


def reset() -> None:
    """Forget every client (tests switch endpoints between cases)."""
    for factory in (s3, dynamodb, sqs, events):
        factory.cache_clear()
