"""Load and invoke the functions' handlers the way the Lambda Python runtime does, in this process.

Lambda imports ``<CodeUri>/<module>.py`` once per execution environment (the cold start) with the layer's
``python/`` directory and the function directory on ``sys.path``, then calls the handler with the event and a
context object. Here every function lives in the same process, so:

* each handler module is imported by file path under a unique module name (every function's file is ``app.py``);
* the environment is process-wide (``os.environ``), so the functions' variables are merged once before the first
  import; the template gives shared names the same value, and a conflict is reported rather than silently won;
* one imported module serves every concurrent invocation (threads), where Lambda would start one environment
  per concurrent request; module-level caches are therefore shared.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cutout_dev.local_stack.aws import REGION
from cutout_dev.local_stack.iam import principals
from cutout_dev.local_stack.intrinsics import ACCOUNT_ID

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


_in_function = threading.local()
_QUERY = re.compile(r"\?[^\s'\"<>]*")


def redact(text: str) -> str:
    """Drop URL query strings from an error message: a presigned URL's query is a bearer credential."""
    return _QUERY.sub("?<redacted>", text)


class FunctionOutput:
    """``sys.stdout`` stand-in that sends what handler threads print (Powertools JSON logs, EMF metrics) to a
    sink — Lambda sends a function's stdout to CloudWatch Logs, not to the terminal of whoever uploaded — and
    everything else to the original stream."""

    def __init__(self, original: Any, sink: Any) -> None:
        self.original = original
        self.sink: Any = sink
        self._lock = threading.Lock()

    def detach_sink(self) -> None:
        """The sink is closing: from now on everything goes to the original stream."""
        with self._lock:
            self.sink = None

    def write(self, text: str) -> int:
        if getattr(_in_function, "active", False):
            with self._lock:
                if self.sink is not None:
                    self.sink.write(text)
                    return len(text)
        return int(self.original.write(text))

    def flush(self) -> None:
        self.original.flush()
        with self._lock:
            if self.sink is not None:
                self.sink.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _FunctionScope:
    """Marks the current thread as running handler code (for FunctionOutput), as the function's role (every AWS
    call it makes is signed with that role's credentials; iam/principals.py)."""

    def __init__(self, principal: str | None = None) -> None:
        self._principal = principal

    def __enter__(self) -> None:
        self._previous = getattr(_in_function, "active", False)
        _in_function.active = True
        self._token = principals.enter(self._principal)

    def __exit__(self, *exc: object) -> None:
        principals.leave(self._token)
        _in_function.active = self._previous


class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object that handlers use."""

    def __init__(self, function_name: str, memory_mb: int, timeout_seconds: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """One finished invocation, for logs, tests and the demo's progress line."""

    function: str
    request_id: str
    started: float
    duration_ms: float
    error: str | None = None
    result: Any = None


class FunctionTimeoutError(RuntimeError):
    """The handler ran past the function's timeout (Lambda would have killed it; a thread cannot be killed)."""


@dataclass
class LocalFunction:
    """One function of the template, ready to invoke."""

    logical_id: str
    function_name: str
    code_dir: Path
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    _module: ModuleType | None = field(default=None, repr=False)
    _entry: Handler | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    fault: Callable[[Any], None] | None = field(default=None, repr=False)
    on_invocation: Callable[[Invocation], None] | None = field(default=None, repr=False)

    def load(self) -> Handler:
        """Import the handler module once (the cold start) and return the handler callable."""
        with self._lock:
            if self._entry is None:
                module_name, _, attr = self.handler.rpartition(".")
                path = self.code_dir / (module_name.replace(".", "/") + ".py")
                if not path.is_file():
                    raise FileNotFoundError(f"{self.logical_id}: handler file {path} not found")
                # Lambda puts the function directory first on sys.path, so sibling modules import.
                if str(self.code_dir) not in sys.path:
                    sys.path.insert(0, str(self.code_dir))
                unique = f"cutout_local_fn_{self.logical_id.lower()}_{module_name.replace('.', '_')}"
                spec = importlib.util.spec_from_file_location(unique, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[unique] = module
                started = time.perf_counter()
                with _FunctionScope(self.logical_id):
                    spec.loader.exec_module(module)
                log.debug("%s: init %.0f ms", self.logical_id, (time.perf_counter() - started) * 1000)
                self._module = module
                self._entry = getattr(module, attr)
            return self._entry

    def configure(self, **seams: Any) -> Any:
        """Rebuild the handler module's domain service through its documented ``configure(...)`` (settings, a
        clock, a failure point) and return it: how the soak and tests inject collaborators instead of rewriting
        module globals. ``configure()`` with no arguments restores what the cold start built."""
        self.load()
        configure = getattr(self._module, "configure", None)
        if not callable(configure):
            raise TypeError(f"{self.logical_id}: the handler module has no configure() seam")
        with _FunctionScope(self.logical_id):
            return configure(**seams)

    def invoke(self, event: Any) -> Any:
        """Call the handler with a fresh context; exceptions propagate as Lambda reports them to the caller."""
        entry = self.load()
        context = LambdaContext(self.function_name, self.memory_mb, self.timeout_seconds)
        started = time.time()
        t0 = time.perf_counter()
        record = Invocation(self.logical_id, context.aws_request_id, started, 0.0)
        try:
            with _FunctionScope(self.logical_id):
                if self.fault is not None:
                    self.fault(event)  # test hook: a poisoned dependency, raised inside the invocation
                result = entry(event, context)
            record.result = result
            elapsed = time.perf_counter() - t0
            if elapsed > self.timeout_seconds:
                raise FunctionTimeoutError(
                    f"{self.logical_id}: {elapsed:.1f}s exceeds the {self.timeout_seconds}s timeout"
                )
            return result
        except Exception as exc:
            record.error = redact(f"{type(exc).__name__}: {exc}")
            log.warning("%s %s failed: %s", self.logical_id, context.aws_request_id, record.error)
            log.debug("%s", redact(traceback.format_exc()))
            raise
        finally:
            record.duration_ms = (time.perf_counter() - t0) * 1000
            if self.on_invocation is not None:
                self.on_invocation(record)


def merge_environments(functions: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Union of every function's variables. Conflicting values for one name are an error locally.

    Lambda gives each function its own environment; one process has one. The template sets shared names to the
    same value, so the union is exact for it; a function-specific value would leak into every function, which is
    why a conflict stops the stack instead of picking a winner.
    """
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for function_id, env in functions.items():
        for name, value in env.items():
            if name in merged and merged[name] != value:
                raise ValueError(
                    f"environment variable {name} differs between {owner[name]} ({merged[name]!r}) and "
                    f"{function_id} ({value!r}); in-process functions share one environment"
                )
            merged[name] = value
            owner[name] = function_id
    return merged


def apply_environment(values: Mapping[str, str]) -> dict[str, str | None]:
    """Set ``values`` in ``os.environ``; return what was there before (for ``restore_environment``)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    return saved


def restore_environment(saved: Mapping[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class FreshImports:
    """Give the stack's functions a fresh execution environment, and give the process its modules back after.

    The domain package caches settings and boto3 clients at import (the cold start), which would pin a previous
    stack's table names and moto port. ``enter`` sets aside already imported ``cutout`` modules (and the
    Powertools parameter providers, which hold clients); ``exit`` drops what the stack imported and restores them,
    so code outside the stack (unit tests holding module references) sees the same objects as before.
    """

    PACKAGES = ("cutout",)

    def __init__(self) -> None:
        self._saved: dict[str, ModuleType] = {}
        self._entered = False

    def _owned(self) -> list[str]:
        return [
            name
            for name in sys.modules
            if name.startswith("cutout_local_fn_") or any(name == p or name.startswith(p + ".") for p in self.PACKAGES)
        ]

    def enter(self) -> None:
        self._entered = True
        for name in self._owned():
            self._saved[name] = sys.modules.pop(name)
        _clear_powertools_providers()

    def exit(self, functions: Mapping[str, LocalFunction]) -> None:
        # A stack refused before its functions were imported (deploy_rules) never entered: dropping the
        # process's own cutout modules then would leave callers holding orphaned modules (stale caches).
        if not self._entered:
            return
        self._entered = False
        for name in self._owned():
            del sys.modules[name]
        sys.modules.update(self._saved)
        self._saved.clear()
        for fn in functions.values():
            if str(fn.code_dir) in sys.path:
                sys.path.remove(str(fn.code_dir))
        _clear_powertools_providers()


def _clear_powertools_providers() -> None:
    module = sys.modules.get("aws_lambda_powertools.utilities.parameters.base")
    providers = getattr(module, "DEFAULT_PROVIDERS", None)
    if isinstance(providers, dict):
        providers.clear()
