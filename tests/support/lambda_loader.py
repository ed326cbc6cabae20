"""Import functions/<name>/app.py the way Lambda does: a fresh module (a cold start) per call."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType

from cutout import aws_clients, secrets
from cutout.config import get_settings

from cutout_dev.local_stack.lambda_runtime import LambdaContext

ROOT = Path(__file__).resolve().parents[2]


def cold_start(function: str) -> ModuleType:
    get_settings.cache_clear()
    aws_clients.reset()
    secrets.reset()
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"fn_{function}_{uuid.uuid4().hex[:8]}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeContext(LambdaContext):
    """The local stack's Lambda context (one source of truth), named for a test invocation."""

    def __init__(self) -> None:
        super().__init__("cutout-test", memory_mb=256, timeout_seconds=30)
