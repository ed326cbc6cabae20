"""Import functions/<name>/app.py the way Lambda does: a fresh module (a cold start) per call."""

from __future__ import annotations

import importlib.util
import os
import uuid
from pathlib import Path
from types import ModuleType

from cutout.aws import aws_clients, secrets
from cutout.runtime.config import get_settings

from cutout_dev.local_stack.iam.principals import acting_as, as_principal
from cutout_dev.local_stack.lambda_runtime import LambdaContext
from tests.support.roles import register_role

ROOT = Path(__file__).resolve().parents[2]


def cold_start(function: str) -> ModuleType:
    """A fresh module of functions/<function>/app.py whose handler (and configure seam) run as the function's role."""
    get_settings.cache_clear()
    aws_clients.reset()
    secrets.reset()
    function_id = f"{function.capitalize()}Function"
    # The function's role, its resources learned from the environment the test gave it: the handler's calls
    # are allowed or refused as on AWS.
    register_role(function_id, os.environ)
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"fn_{function}_{uuid.uuid4().hex[:8]}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    with acting_as(function_id):
        spec.loader.exec_module(module)
    module.lambda_handler = as_principal(function_id, module.lambda_handler)
    if hasattr(module, "configure"):
        module.configure = as_principal(function_id, module.configure)
    return module


class FakeContext(LambdaContext):
    """The local stack's Lambda context (one source of truth), named for a test invocation. It has the longest
    timeout Lambda allows: a batch must never defer records for time because a loaded machine ran it slowly (with
    30 s, the budget of one Magic Hour call left under 3 s for the rest of a batch of ten); the time budget's own
    tests give their own context."""

    def __init__(self) -> None:
        super().__init__("cutout-test", memory_mb=256, timeout_seconds=900)
