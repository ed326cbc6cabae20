"""Import functions/<name>/app.py the way Lambda does: a fresh module (a cold start) per call."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType

from cutout import aws_clients, secrets
from cutout.config import get_settings

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


class FakeContext:
    function_name = "cutout-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cutout-test"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
