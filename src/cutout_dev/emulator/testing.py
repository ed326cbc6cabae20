"""Small loopback HTTP helpers for tests and benchmarks: a file server and a webhook receiver.

They keep tests off the internet: input images are served from 127.0.0.1, and webhook
deliveries land in memory where a test can verify signatures against the raw body.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from PIL import Image


def image_bytes(
    size: tuple[int, int] = (64, 48),
    background: tuple[int, int, int] = (255, 255, 255),
    subject: tuple[int, int, int] = (200, 30, 30),
    fmt: str = "PNG",
) -> bytes:
    """A plain background with a solid rectangle in the middle: the cutout keeps only the rectangle."""
    img = Image.new("RGB", size, background)
    w, h = size
    img.paste(subject, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


class _LoopbackServer:
    handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def start(self) -> str:
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class _FileHandler(_QuietHandler):
    def do_GET(self) -> None:
        owner: StaticFileServer = self.server.owner  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        with owner.lock:
            owner.hits.append(path)
            entry = owner.files.get(path)
            gate = owner.gates.get(path)
        if gate is not None:
            gate.wait(owner.hold_timeout)
        if entry is None:
            self.send_response(404)
            self.end_headers()
            return
        status, data = entry
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class StaticFileServer(_LoopbackServer):
    """Serves `files[path] = bytes` (or `(status, bytes)`); anything else is 404.

    `add(..., held=True)` makes GETs of that path wait until `release(path)`: a test can keep an
    emulator render in progress for as long as it needs, with no sleeps and no timing guesses.
    """

    handler = _FileHandler
    hold_timeout = 30.0  # a forgotten release() fails the fetch instead of hanging the suite

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, bytes]] = {}
        self.hits: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        super().__init__()

    def add(self, path: str, data: bytes, status: int = 200, *, held: bool = False) -> str:
        with self.lock:
            self.files[path] = (status, data)
            if held:
                self.gates[path] = threading.Event()
        return self.base_url + path

    def release(self, path: str) -> None:
        with self.lock:
            gate = self.gates.pop(path, None)
        if gate is not None:
            gate.set()

    def stop(self) -> None:
        with self.lock:
            gates, self.gates = list(self.gates.values()), {}
        for gate in gates:
            gate.set()  # let held requests finish so shutdown does not wait on them
        super().stop()


@dataclass(frozen=True)
class ReceivedWebhook:
    body: bytes
    headers: dict[str, str]
    status_returned: int
    received_at: float


class _WebhookHandler(_QuietHandler):
    def do_POST(self) -> None:
        owner: WebhookReceiver = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with owner.lock:
            status = owner.statuses.pop(0) if owner.statuses else 200
            owner.received.append(
                ReceivedWebhook(body, {k.lower(): v for k, v in self.headers.items()}, status, time.time())
            )
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class WebhookReceiver(_LoopbackServer):
    """Records every POST. `respond_with([500, 500])` makes the next calls fail, then 200."""

    handler = _WebhookHandler

    def __init__(self) -> None:
        self.received: list[ReceivedWebhook] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        super().__init__()

    @property
    def url(self) -> str:
        return self.base_url + "/webhook"

    def respond_with(self, statuses: Iterable[int]) -> None:
        with self.lock:
            self.statuses = list(statuses)

    def snapshot(self) -> list[ReceivedWebhook]:
        with self.lock:
            return list(self.received)
