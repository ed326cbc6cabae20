"""Secrets Manager reads on the shared boto3 client, cached per execution environment.

The cache keeps Secrets Manager off the per-record path; a 401 from Magic Hour forces a re-read so a
rotated key is picked up without a redeploy.

A few lines of our own rather than Powertools' SecretsProvider, after measuring (README, Benchmarks): importing
`aws_lambda_powertools.utilities.parameters` loads every provider (SSM, AppConfig, DynamoDB with
`boto3.dynamodb.conditions`), ~3.5-4 ms of each cold start of the four functions that read a secret, for one
`get_secret_value` call and a TTL. Same contract as the provider was used: a value is reused for
SECRET_MAX_AGE_SECONDS, `force` reads anew, and any failure of the read is a `SecretUnavailable`.
"""

from __future__ import annotations

import json
import threading
import time

from cutout import aws_clients

SECRET_MAX_AGE_SECONDS = 300
# Threads of one process (the local stack) share the cache; one read at a time keeps them from racing it.
# In Lambda there is one invocation per process and the lock is never contended.
_lock = threading.Lock()
_cache: dict[str, tuple[float, str | bytes]] = {}  # secret id -> (monotonic expiry, value)


class SecretUnavailable(RuntimeError):
    """The secret id is unset or the secret cannot be read: a configuration problem, retried via the queue."""


def reset() -> None:
    """Forget every cached value (tests switch endpoints and secret values)."""
    with _lock:
        _cache.clear()


def _fetch(secret_id: str, *, force: bool) -> str | bytes:
    with _lock:
        cached = _cache.get(secret_id)
        if cached is not None and not force and time.monotonic() < cached[0]:
            return cached[1]
        try:
            answer = aws_clients.secretsmanager().get_secret_value(SecretId=secret_id)
        except Exception as exc:  # any failure (client, network, credentials) means "cannot read", as before
            raise SecretUnavailable(f"cannot read secret {secret_id!r}: {type(exc).__name__}") from None
        value: str | bytes = answer["SecretString"] if "SecretString" in answer else answer["SecretBinary"]
        _cache[secret_id] = (time.monotonic() + SECRET_MAX_AGE_SECONDS, value)
        return value


def _read(secret_id: str, *, force: bool) -> str:
    if not secret_id:
        raise SecretUnavailable("secret id is not configured")
    value = _fetch(secret_id, force=force)
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
