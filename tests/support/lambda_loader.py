"""Import functions/<name>/app.py the way Lambda does: a fresh module (a cold start) per call."""

from __future__ import annotations

import importlib.util
import os
import uuid
from functools import cache
from pathlib import Path
from types import ModuleType

from cutout.aws import aws_clients, secrets
from cutout.runtime.config import get_settings

from cutout_dev.local_stack.aws import REGION
from cutout_dev.local_stack.iam.principals import acting_as, as_principal, register, role_session_arn
from cutout_dev.local_stack.iam.roles import environment_resolver, function_roles
from cutout_dev.local_stack.intrinsics import ACCOUNT_ID
from cutout_dev.local_stack.lambda_runtime import LambdaContext
from cutout_dev.local_stack.template import TranslatedTemplate, translate

ROOT = Path(__file__).resolve().parents[2]


@cache
def _template() -> TranslatedTemplate:
    return translate(ROOT / "template.yaml", {})


def _secret_arn(name: str) -> str:
    import boto3

    # A session of the harness's own: tests that count the function's calls watch the default session.
    arn: str = boto3.Session().client("secretsmanager").describe_secret(SecretId=name)["ARN"]
    return arn


def _register_role(function_id: str) -> None:
    """The function's role from template.yaml, its resources learned from the environment the test gave it,
    registered with moto's IAM: the handler's calls are allowed or refused as on AWS."""
    template = _template()
    resolve = environment_resolver(
        template, function_id, os.environ, secret_arn=_secret_arn, region=REGION, account=ACCOUNT_ID
    )
    roles = function_roles(template, lambda _f: resolve, [function_id])
    arn = role_session_arn(f"test-{function_id}Role", f"test-{function_id}", ACCOUNT_ID)
    register([os.environ["AWS_ENDPOINT_URL"]], roles, arns={function_id: arn})


def cold_start(function: str) -> ModuleType:
    """A fresh module of functions/<function>/app.py whose handler (and configure seam) run as the function's role."""
    get_settings.cache_clear()
    aws_clients.reset()
    secrets.reset()
    function_id = f"{function.capitalize()}Function"
    _register_role(function_id)
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
