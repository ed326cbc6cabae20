"""`EmulatorServer`: a threaded werkzeug server around the app, usable in-process or as a CLI."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import DropConnection, EmulatorApp
from .config import EmulatorConfig
from .engine import Engine
from .plan import PlanStats
from .state import EmulatorState, Project


class _Handler(WSGIRequestHandler):
    """Quiet request handler that turns `DropConnection` into a TCP reset.

    werkzeug routes a ConnectionError raised by the app to `connection_dropped`. There we set
    SO_LINGER to 0 and close, so the kernel sends RST: the client sees "connection reset"
    with no HTTP response at all, the classic ambiguous outcome.
    """

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        if isinstance(error, DropConnection):
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return  # tests and benchmarks would drown in access logs


class EmulatorServer:
    """Magic Hour API emulator on 127.0.0.1.

    >>> with EmulatorServer(EmulatorConfig(render_seconds=0.1)) as emu:
    ...     base_url = emu.base_url
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        config = config or EmulatorConfig()
        if overrides:
            config = config.with_changes(**overrides)
        self.engine = Engine(config)
        self.app = EmulatorApp(self.engine)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # --- process lifecycle --------------------------------------------------------------
    def start(self) -> str:
        if self._server is not None:
            return self.base_url
        cfg = self.engine.config
        self._server = make_server(cfg.host, cfg.port, self.app, threaded=True, request_handler=_Handler)
        self.base_url = f"http://{cfg.host}:{self._server.server_port}"
        self.engine.start(self.base_url)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator-http", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.engine.stop()
        self._server = None

    def serve_forever(self) -> None:
        """Block until interrupted (the CLI path)."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_port if self._server is not None else 0

    # --- in-process control -------------------------------------------------------------
    @property
    def config(self) -> EmulatorConfig:
        return self.engine.config

    @property
    def state(self) -> EmulatorState:
        return self.engine.state

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change faults/timing/webhook settings at runtime (validated; unknown names raise)."""
        return self.engine.configure(**changes)

    def reset(self) -> None:
        self.engine.reset()

    def request_counts(self) -> dict[str, int]:
        return self.engine.state.request_counts()

    def project(self, project_id: str) -> Project | None:
        return self.engine.state.project(project_id)

    def net_credits_spent(self) -> int:
        return self.engine.state.net_credits_spent()

    def credit_balance(self) -> int:
        return self.engine.credit_balance()

    def plan_stats(self) -> PlanStats:
        """Rendering/queued counts now and the highest number ever rendering at once, overall and per key."""
        return self.engine.plan_stats()

    def wait_until(self, predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01) -> Any:
        """Poll `predicate` until truthy and return its value; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)

    def wait_for_status(self, project_id: str, *statuses: str, timeout: float = 5.0) -> Project:
        wanted = statuses or ("complete", "error", "canceled")

        def check() -> Project | None:
            p = self.project(project_id)
            return p if p is not None and p.status in wanted else None

        result: Project = self.wait_until(check, timeout)
        return result

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no project is mid-render and no webhook delivery is pending."""
        self.wait_until(self.engine.quiescent, timeout)
