"""Secrets Manager reads through Powertools parameters, cached per execution environment.

The cache keeps Secrets Manager off the per-record path; a 401 from Magic Hour forces a re-read so a
rotated key is picked up without a redeploy.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from typing import Any

from cutout.domain.errors import SecretUnavailable

SECRET_MAX_AGE_SECONDS = 300
# Powertools creates its provider (and boto3 client) on first use; threads of one process (the local stack)
# must not race that. In Lambda there is one invocation per process and the lock is never contended.
_lock = threading.Lock()


@cache
def _provider() -> Any:
    """Powertools' cached SecretsProvider on our shared boto3 client: left to itself it builds a boto3 session of
    its own, loading endpoint and service models a second time on every cold start (~80 ms, measured)."""
    from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider

    from cutout.aws import aws_clients

    return SecretsProvider(boto3_client=aws_clients.secretsmanager())


def reset() -> None:
    """Forget the provider and its cache (tests switch endpoints and secret values)."""
    _provider.cache_clear()


def _read(secret_id: str, *, force: bool) -> str:
    if not secret_id:
        raise SecretUnavailable("secret id is not configured")
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        with _lock:
            value = _provider().get(secret_id, max_age=SECRET_MAX_AGE_SECONDS, force_fetch=force)
    except GetParameterError as exc:
        raise SecretUnavailable(f"cannot read secret {secret_id!r}: {type(exc).__name__}") from None
    if isinstance(value, bytes):
        value = value.decode()
    text = str(value).strip()
    # Accept either the bare value or a JSON object with one obvious field, as consoles tend to create.
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for field in ("api_key", "apiKey", "secret", "webhook_secret", "value"):
                if isinstance(doc.get(field), str):
                    return str(doc[field])
    if not text:
        raise SecretUnavailable(f"secret {secret_id!r} is empty")
    return text


def api_key(secret_id: str, *, force: bool = False) -> str:
    return _read(secret_id, force=force)


def webhook_secret(secret_id: str, *, force: bool = False) -> str:
    return _read(secret_id, force=force)
