"""Embedded AWS: moto's server on a free loopback port, and the process environment that points boto3 at it.

Server mode (rather than ``mock_aws``) is what makes the local stack behave like AWS for everything that talks
to it: S3 → EventBridge → SQS delivery happens inside moto, presigned URLs are real HTTP URLs the emulator can
fetch, and the aws CLI works against the same endpoint.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

log = logging.getLogger(__name__)

REGION = "us-east-1"

# Dummy credentials: moto accepts anything, and setting them stops botocore from searching the instance
# metadata service or a real profile (a slow, network-touching detour, and a risk of touching a real account).
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


class _AtomicDynamoDB:
    """WSGI wrapper that serialises DynamoDB requests.

    DynamoDB applies each conditional write atomically; moto's backend has no locking and moto server is
    threaded, so two concurrent conditional puts can both "succeed" — a race real DynamoDB never has. Cutout's
    guarantees (one claim per job, the budget counter, the finalize lease) rest on those conditions, so the
    emulated account must keep them. Other services are left concurrent.
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            with self._lock:
                # Materialise the body inside the lock: the backend does its work while it is produced.
                return list(self._app(environ, start_response))
        return self._app(environ, start_response)


class MotoServer:
    """A moto server thread bound to 127.0.0.1 on an OS-assigned port.

    The same WSGI app as ``moto.server.ThreadedMotoServer``, served here so that shutdown is prompt (a short
    ``poll_interval``) and the listening socket is closed (ThreadedMotoServer leaves it open).
    """

    def __init__(self) -> None:
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> str:
        """Start the server, point this process's boto3 at it, and return the endpoint URL."""
        app = _AtomicDynamoDB(DomainDispatcherApplication(create_backend_app))
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="moto-server", daemon=True
        )
        self._thread.start()
        self.endpoint_url = f"http://127.0.0.1:{server.server_port}"
        # moto's state is per process, not per server: a second stack in the same process (tests) must not
        # see the first one's buckets and queues.
        self.reset()
        self._apply_env({**_AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint_url})
        log.info("moto server on %s", self.endpoint_url)
        return self.endpoint_url

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
            self._thread = None
        self._restore_env()

    def client(self, service: str) -> Any:
        """A boto3 client pinned to this server (independent of the process environment)."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
        )

    def _apply_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
