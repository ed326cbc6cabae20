"""A local HTTP endpoint shaped like a Lambda Function URL (payload format 2.0).

Magic Hour (the emulator) posts signed webhooks here; the endpoint turns each request into the event a Function
URL would build, calls the webhook function in-process and maps its result back to HTTP the way Function URLs do.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from cutout_dev.local_stack.lambda_runtime import LocalFunction

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse

log = logging.getLogger(__name__)

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml")
_URL_ID = "cutoutlocalwebhook"


def build_event(request: Request) -> dict[str, Any]:
    """The payload-format-2.0 event for ``request`` (header names lowercased, repeated values comma-joined)."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    raw = request.get_data(cache=True)
    content_type = headers.get("content-type", "")
    is_text = not raw or any(t in content_type for t in _TEXT_TYPES)
    if is_text:
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            is_text = False
    if not is_text:
        body = base64.b64encode(raw).decode("ascii")
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode("latin-1"),
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": _URL_ID,
            "domainName": request.host,
            "domainPrefix": _URL_ID,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if raw:
        event["body"] = body
    if request.args:
        event["queryStringParameters"] = {k: ",".join(request.args.getlist(k)) for k in request.args}
    if request.cookies:
        event["cookies"] = [f"{k}={v}" for k, v in request.cookies.items()]
    return event


def to_response(result: Any) -> Response:
    """Map the handler's return value to HTTP as Function URLs do (a bare value becomes a 200 JSON body)."""
    if isinstance(result, dict) and "statusCode" in result:
        body: Any = result.get("body", "")
        if result.get("isBase64Encoded"):
            body = base64.b64decode(body)
        response = Response(body, status=int(result["statusCode"]))
        for name, value in (result.get("headers") or {}).items():
            response.headers[name] = str(value)
        for cookie in result.get("cookies") or []:
            response.headers.add("Set-Cookie", cookie)
        return response
    payload = result if isinstance(result, str) else json.dumps(result)
    return Response(payload, status=200, content_type="application/json")


class FunctionUrlServer:
    """werkzeug server on 127.0.0.1; ``url`` is known after ``bind()``, the function can be attached later."""

    def __init__(self) -> None:
        self.function: LocalFunction | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.requests = 0

    def bind(self) -> str:
        """Open the port now: the URL must exist before the stack resolves the functions' environment."""
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/"  # Function URLs end with a slash
        return self.url

    def start(self) -> None:
        if self._server is None:
            self.bind()
        assert self._server is not None
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="function-url", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(timeout=10)
            self._server.server_close()
            self._server = None

    def _wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        response = self._handle(Request(environ))
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        self.requests += 1
        if self.function is None:
            return Response('{"Message":"Service Unavailable"}', status=503, content_type="application/json")
        event = build_event(request)
        started = time.perf_counter()
        try:
            result = self.function.invoke(event)
        except Exception:
            # A failed invocation is a 502 at a Function URL; the caller (Magic Hour) retries.
            return Response('{"Message":"Internal Server Error"}', status=502, content_type="application/json")
        finally:
            log.debug("function url %s %s %.0f ms", request.method, request.path, (time.perf_counter() - started) * 1e3)
        return to_response(result)
