"""Each function calls AWS as its own role: per-function credentials in a process that runs every function.

The local stack runs all functions in one process and one boto3 default session (lambda_runtime), so credentials
cannot come from the environment as they do in Lambda. Instead the function being run is a context variable set
around its cold start and each invocation (``acting_as``), and botocore's frozen credentials — what every request
and every presigned URL is signed with — are those of that function's role while it is set. Only the local dummy
credentials are ever swapped: a real AWS credential is never touched.

The access key names the role; moto's IAM middleware (enforcer.py) finds the role's policies by it.
"""

from __future__ import annotations

import contextvars
import re
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from cutout_dev.local_stack.iam.domain_calls import DOMAIN_CALLS
from cutout_dev.local_stack.iam.enforcer import CONTROL_PREFIX, principal_payload

LOCAL_ACCESS_KEY = "testing"  # the dummy key the local stack and the tests put in the environment
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("cutout_local_principal", default=None)
_install_lock = threading.Lock()
_installed: list[bool] = []  # one entry once installed (a list: no module-level rebinding)

T = TypeVar("T")


def access_key_for(logical_id: str) -> str:
    """A role session's access key id (ASIA... as AWS's temporary keys), derived from the function's logical id."""
    return "ASIA" + re.sub(r"[^A-Z0-9]", "", logical_id.upper())


def current() -> str | None:
    return _current.get()


def enter(logical_id: str | None) -> contextvars.Token[str | None]:
    return _current.set(logical_id)


def leave(token: contextvars.Token[str | None]) -> None:
    _current.reset(token)


@contextmanager
def acting_as(logical_id: str | None) -> Iterator[None]:
    token = _current.set(logical_id)
    try:
        yield
    finally:
        _current.reset(token)


def as_principal(logical_id: str, fn: Callable[..., T]) -> Callable[..., T]:
    def wrapped(*args: Any, **kwargs: Any) -> T:
        with acting_as(logical_id):
            return fn(*args, **kwargs)

    wrapped.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapped


def install() -> None:
    """Make botocore sign with the current function's credentials (idempotent, process-wide)."""
    with _install_lock:
        if _installed:
            return
        from botocore.credentials import Credentials, ReadOnlyCredentials

        original = Credentials.get_frozen_credentials

        def frozen(self: Credentials) -> ReadOnlyCredentials:
            creds = original(self)
            if creds.access_key != LOCAL_ACCESS_KEY:
                return creds
            # No function being run: a test's direct call of domain code still runs as a role (domain_calls.py).
            principal = _current.get() or DOMAIN_CALLS.principal(sys._getframe(1))
            if principal is None:
                return creds
            return ReadOnlyCredentials(access_key_for(principal), "local-role-secret", f"local-session-{principal}")

        Credentials.get_frozen_credentials = frozen  # type: ignore[method-assign]
        _installed.append(True)


def role_session_arn(role_name: str, function_name: str, account: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role_name}/{function_name}"


def register(
    endpoints: Sequence[str],
    roles: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]],
    *,
    arns: Mapping[str, str],
) -> None:
    """Give every moto process the functions' policies (logical id -> [(policy name, document)])."""
    install()
    body = principal_payload(
        {
            "access_key": access_key_for(logical_id),
            "name": logical_id,
            "arn": arns[logical_id],
            "documents": [[name, doc] for name, doc in documents],
        }
        for logical_id, documents in roles.items()
    )
    for endpoint in dict.fromkeys(endpoints):
        request = urllib.request.Request(
            endpoint.rstrip("/") + CONTROL_PREFIX + "principals",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback only: the local moto server
            response.read()


def report(endpoint: str) -> dict[str, Any]:
    import json

    with urllib.request.urlopen(endpoint.rstrip("/") + CONTROL_PREFIX + "report", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data
