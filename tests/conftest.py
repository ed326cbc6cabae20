"""Shared fixtures: moto server over HTTP, the Magic Hour emulator over HTTP, resources from template.yaml.

Every AWS call in the suite goes through moto *server* (boto3 honours AWS_ENDPOINT_URL) and every Magic Hour
call through the emulator's HTTP server: real protocols, nothing patched in-process.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cutout.aws import aws_clients
from cutout.runtime.config import get_settings

from cutout_dev.emulator import EmulatorConfig, EmulatorServer
from cutout_dev.local_stack.aws import MotoServer
from tests.support import roles
from tests.support.template import table_definition

API_KEY = "emulator-key-for-tests"
WEBHOOK_SECRET = "whsec-test-0123456789abcdef"
BUCKET = "cutout-images-test"
INPUT_PREFIX = "incoming/"
OUTPUT_PREFIX = "cutouts/"

# Things that must never reach a log line: the key, the webhook secret, a presigned URL's signature.
SECRET_PATTERNS = [
    re.compile(re.escape(API_KEY)),
    re.compile(re.escape(WEBHOOK_SECRET)),
    re.compile(r"X-Amz-Signature=[0-9a-f]{16,}", re.IGNORECASE),
    re.compile(r"X-Amz-Credential=", re.IGNORECASE),
]


# moto server's and the emulator's werkzeug access logs print every URL they serve, presigned signatures
# included; that is the test servers' chatter, not Cutout's, and would only drown the suite's output.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Aws:
    server: MotoServer
    bucket: str
    table: str
    poll_queue_url: str
    completion_queue_url: str
    api_key_secret: str
    webhook_secret: str

    def client(self, service: str) -> Any:
        return self.server.client(service)

    def put(self, key: str, body: bytes, content_type: str = "image/png", **extra: Any) -> dict[str, Any]:
        resp: dict[str, Any] = self.client("s3").put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **extra
        )
        return resp

    def jobs(self) -> list[dict[str, Any]]:
        from cutout.domain.job import plain_item
        from cutout.store.counters import is_counter

        items = self.client("dynamodb").scan(TableName=self.table)["Items"]
        return [plain_item(i) for i in items if not is_counter(i["job_id"]["S"])]


@pytest.fixture
def aws(moto_server: MotoServer) -> Aws:
    """A clean account: the images bucket, the jobs table (schema from template.yaml), queues, secrets."""
    moto_server.reset()
    aws_clients.reset()
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    ddb = moto_server.client("dynamodb")
    ddb.create_table(TableName="cutout-jobs", **table_definition())
    sqs = moto_server.client("sqs")
    poll = sqs.create_queue(QueueName="cutout-poll")["QueueUrl"]
    completion = sqs.create_queue(QueueName="cutout-completion")["QueueUrl"]
    sm = moto_server.client("secretsmanager")
    sm.create_secret(Name="cutout/magic-hour-api-key", SecretString=API_KEY)
    sm.create_secret(Name="cutout/magic-hour-webhook-secret", SecretString=WEBHOOK_SECRET)
    roles.ACCOUNT_ENVIRONMENT.clear()
    roles.ACCOUNT_ENVIRONMENT.update(
        JOBS_TABLE="cutout-jobs",
        SOURCE_BUCKET=BUCKET,
        POLL_QUEUE_URL=poll,
        COMPLETION_QUEUE_URL=completion,
        MAGIC_HOUR_API_KEY_SECRET="cutout/magic-hour-api-key",
        MAGIC_HOUR_WEBHOOK_SECRET="cutout/magic-hour-webhook-secret",
    )
    return Aws(
        server=moto_server,
        bucket=BUCKET,
        table="cutout-jobs",
        poll_queue_url=poll,
        completion_queue_url=completion,
        api_key_secret="cutout/magic-hour-api-key",
        webhook_secret="cutout/magic-hour-webhook-secret",
    )


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(EmulatorConfig(api_key=API_KEY, queue_seconds=0.01, render_seconds=0.05))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def function_env(aws: Aws, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment the template gives the functions, pointed at moto and the emulator."""
    env = {
        "JOBS_TABLE": aws.table,
        "SOURCE_BUCKET": aws.bucket,
        "INPUT_PREFIX": INPUT_PREFIX,
        "OUTPUT_PREFIX": OUTPUT_PREFIX,
        "MAGIC_HOUR_BASE_URL": emulator.base_url,
        "MAGIC_HOUR_API_KEY_SECRET": aws.api_key_secret,
        "MAGIC_HOUR_WEBHOOK_SECRET": aws.webhook_secret,
        "POLL_QUEUE_URL": aws.poll_queue_url,
        "COMPLETION_QUEUE_URL": aws.completion_queue_url,
        "POLL_FIRST_DELAY_SECONDS": "0",
        "POWERTOOLS_SERVICE_NAME": "cutout",
        "POWERTOOLS_METRICS_NAMESPACE": "Cutout",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return env


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a log line that cannot be formatted is itself worth seeing
            self.lines.append(repr(record.__dict__))


@pytest.fixture(autouse=True)
def no_secrets_in_logs() -> Iterator[_Collector]:
    """Every test: whatever any logger wrote (formatted as Powertools formats it) holds no secret."""
    from cutout.runtime.observability import logger as cutout_logger

    collector = _Collector()
    collector.setFormatter(cutout_logger.registered_formatter)
    root = logging.getLogger()
    std_cutout = logging.getLogger("cutout")
    targets = [root] if std_cutout.propagate else [root, std_cutout]
    for target in targets:
        target.addHandler(collector)
    try:
        yield collector
    finally:
        for target in targets:
            target.removeHandler(collector)
    leaks = secret_leaks(collector.lines)
    assert not leaks, f"secret material in logs: {leaks[:3]}"


def secret_leaks(lines: list[str]) -> list[str]:
    """The lines the log guard fails a test for: any that one of SECRET_PATTERNS finds."""
    return [line for line in lines if any(p.search(line) for p in SECRET_PATTERNS)]


os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Cutout")


@pytest.fixture(autouse=True)
def iam_refusals(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test: no call of a function may be refused by its role (AWS's AccessDenied), even one the code
    tolerates (a best-effort event, a retried read): a refusal here is a deploy-day failure on AWS. Tests of the
    local IAM itself are marked ``iam_refusals_expected``.

    Domain code the test drives directly runs as the function named by ``@pytest.mark.function_role(...)`` (or
    ``roles.function_role`` around a step); with none named, each of its calls is refused and listed here. Running
    it unrestricted is an opt-in by name with the reason: ``@pytest.mark.unrestricted_aws("why")``
    (``pytest --co -q -m unrestricted_aws`` lists them)."""
    from cutout_dev.local_stack.iam.enforcer import SEEN_REFUSALS
    from cutout_dev.local_stack.iam.principals import install

    install()
    role = request.node.get_closest_marker("function_role")
    opt_out = request.node.get_closest_marker("unrestricted_aws")
    if opt_out is not None and not (opt_out.args and str(opt_out.args[0]).strip()):
        pytest.fail("@pytest.mark.unrestricted_aws needs the reason the test runs domain code unrestricted")
    roles.start_test(role.args[0] if role else None, unrestricted=opt_out is not None)
    before = len(SEEN_REFUSALS)
    yield
    refusals = SEEN_REFUSALS[before:]
    unscoped = roles.unscoped_calls()
    roles.DOMAIN_CALLS.reset(guarding=False)
    if refusals and request.node.get_closest_marker("iam_refusals_expected") is None:
        lines = [f"{r['principal']} {r['operation']}: {r['why']}" for r in refusals[:5]]
        if unscoped:
            lines.insert(0, f"domain code called AWS with no function's role at {sorted(set(unscoped))[:3]}:")
            lines.insert(1, "  name the function it runs as (@pytest.mark.function_role / roles.function_role)")
        pytest.fail(f"IAM refused {len(refusals)} call(s) of the functions:\n" + "\n".join(lines), pytrace=False)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """With CUTOUT_IAM_REPORT_DIR set, each test phase's duration (the mutation check reruns the cheapest tests
    that rely on a grant, fixtures included); with CUTOUT_IAM_RESULTS_DIR set, each phase's outcome of a
    mutation run."""
    for variable, name in (("CUTOUT_IAM_REPORT_DIR", "durations"), ("CUTOUT_IAM_RESULTS_DIR", "results")):
        directory = os.environ.get(variable)
        if directory:
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, f"{name}-{os.getpid()}.tsv"), "a", encoding="utf-8") as out:
                out.write(f"{report.nodeid}\t{report.when}\t{report.duration:.3f}\t{report.outcome}\n")


def _mutation_plan() -> dict[str, dict[str, Any]]:
    plan_path = os.environ.get("CUTOUT_IAM_WITHOUT_PLAN")
    return json.loads(Path(plan_path).read_text(encoding="utf-8")) if plan_path else {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A mutation run gives each test a timeout of a few times its usual length: a refused call that leaves it
    waiting for what never happens fails it in seconds, not at the suite's five minutes."""
    plan = _mutation_plan()
    for item in items:
        if item.nodeid in plan:
            item.add_marker(pytest.mark.timeout(plan[item.nodeid]["timeout"]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A mutation run (cutout_dev.iam_check) names, per test, the grant to remove while that test runs: one
    session checks many grants, each against its own test."""
    entry = _mutation_plan().get(item.nodeid)
    if entry is None:
        yield
        return
    from cutout_dev.local_stack.iam.roles import WITHOUT_VARIABLE

    saved = os.environ.get(WITHOUT_VARIABLE)
    os.environ[WITHOUT_VARIABLE] = entry["without"]
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(WITHOUT_VARIABLE, None)
        else:
            os.environ[WITHOUT_VARIABLE] = saved
