"""LocalStack: the whole Cutout pipeline on 127.0.0.1 — moto, the Magic Hour emulator, the real handlers.

Start order matters and follows the data: the webhook endpoint binds first (its URL goes into the template's
Function URL references and the emulator's webhook setting), then moto and the resources, then the emulator
(it needs the webhook secret), then the functions (they need the resolved environment), then the event sources.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

from cutout_dev.local_stack.aws import REGION, MotoServer
from cutout_dev.local_stack.config import (
    LOCAL_PARAMETERS,
    PROJECT_ROOT,
    REAL_MAGIC_HOUR_URL,
    Endpoints,
    LocalStackConfig,
    Uploaded,
)
from cutout_dev.local_stack.function_url import FunctionUrlServer
from cutout_dev.local_stack.iam.principals import register, role_session_arn
from cutout_dev.local_stack.iam.principals import report as iam_report
from cutout_dev.local_stack.iam.roles import function_roles, role_id_of
from cutout_dev.local_stack.intrinsics import ACCOUNT_ID
from cutout_dev.local_stack.lambda_runtime import (
    FreshImports,
    FunctionOutput,
    Invocation,
    LocalFunction,
    apply_environment,
    merge_environments,
    restore_environment,
)
from cutout_dev.local_stack.queries import StackQueries, is_job_record, job_id_for, redrive_messages
from cutout_dev.local_stack.resources import DeployedResources, deploy
from cutout_dev.local_stack.schedule import ScheduleRunner
from cutout_dev.local_stack.sqs_poller import SqsPoller
from cutout_dev.local_stack.template import SECRET, TranslatedTemplate, translate

log = logging.getLogger(__name__)


class LocalStack:
    """The pipeline in this process. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, config: LocalStackConfig | None = None, **overrides: Any) -> None:
        cfg = config or LocalStackConfig()
        for name, value in overrides.items():
            if not hasattr(cfg, name):
                raise TypeError(f"unknown LocalStack option {name!r}")
            setattr(cfg, name, value)
        self.config = cfg
        self.moto = MotoServer(own_process=cfg.aws_in_own_process)
        self.function_url = FunctionUrlServer()
        self.emulator: Any = None  # cutout_dev.emulator.EmulatorServer when not using real Magic Hour
        self.functions: dict[str, LocalFunction] = {}
        self.pollers: list[SqsPoller] = []
        self.schedules: list[ScheduleRunner] = []
        # Recent invocations (bounded: `cutout local up` runs for hours), for tests, the demo and debugging.
        self.invocations: deque[Invocation] = deque(maxlen=10_000)
        self._invocations_lock = threading.Lock()
        self.translated: TranslatedTemplate | None = None
        self.resources: DeployedResources | None = None
        self.webhook_secret = secrets.token_urlsafe(32)
        self._endpoints: Endpoints | None = None
        # The read side (queries.py), held: what tests and tools ask of a running stack.
        self.queries = StackQueries(self)
        q = self.queries
        self.jobs, self.job_statuses, self.job, self.wait_for_terminal = (
            q.jobs,
            q.job_statuses,
            q.job,
            q.wait_for_terminal,
        )
        self.queue_depths, self.dead_letter_queues, self.redrive = q.queue_depths, q.dead_letter_queues, q.redrive
        self.quiescent, self.still_moving = q.quiescent, q.still_moving
        self._saved_env: dict[str, str | None] = {}
        self._imports = FreshImports()
        self._started = False
        self._log_file: Any = None
        self._function_output: FunctionOutput | None = None
        self._stdout: Any = None
        self._redirected: list[logging.StreamHandler[Any]] = []

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def uses_real_magic_hour(self) -> bool:
        return bool(self.config.real_magic_hour)

    def start(self) -> LocalStack:
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        t0 = time.perf_counter()
        webhook_url = self.function_url.bind()
        aws_endpoint = self.moto.start()

        # Magic Hour first: its base URL is a template parameter, and the emulator's API key is a secret value.
        if self.uses_real_magic_hour:
            # MAGIC_HOUR_BASE_URL lets real mode target another server speaking the API (the tests use the
            # emulator there, so real mode is exercised without the internet). Callers that offer real mode to a
            # person confirm the spend and check the API first (cutout_dev.real_api).
            base_url = os.environ.get("MAGIC_HOUR_BASE_URL") or REAL_MAGIC_HOUR_URL
            api_key = os.environ.get("MAGIC_HOUR_API_KEY", "")
            if not api_key:
                raise RuntimeError("real Magic Hour needs MAGIC_HOUR_API_KEY in the environment")
            extra_params = {"AssetTransfer": "upload"}
        else:
            from cutout_dev.emulator import EmulatorConfig, EmulatorServer

            emu_cfg = EmulatorConfig(
                webhook_url=webhook_url if self.config.webhooks else "",
                webhook_secret=self.webhook_secret,
                **self.config.emulator,
            )
            self.emulator = EmulatorServer(emu_cfg)
            base_url = self.emulator.start()
            api_key = emu_cfg.api_key
            extra_params = {}
        parameters = {**LOCAL_PARAMETERS, "MagicHourBaseUrl": base_url, **extra_params, **self.config.parameters}

        translated = translate(self.config.template, parameters)
        self.translated = translated
        secret_values = {
            **{sid: api_key for sid in self._secrets_named_by("MAGIC_HOUR_API_KEY_SECRET")},
            **{sid: self.webhook_secret for sid in self._secrets_named_by("MAGIC_HOUR_WEBHOOK_SECRET")},
        }
        self.resources = deploy(
            translated,
            self.moto,
            parameters,
            stack_name=self.config.stack_name,
            function_url=webhook_url,
            secret_values=secret_values,
            account_concurrency_quota=self.config.account_concurrency_quota,
        )
        self._register_roles()
        self._build_functions()
        self._endpoints = self._make_endpoints(aws_endpoint, base_url, webhook_url)
        self._start_event_sources()
        log.info("local stack up in %.1f s", time.perf_counter() - t0)

    def _secrets_named_by(self, variable: str) -> list[str]:
        """Logical ids of the secrets a function's ``variable`` refers to (how the template wires them)."""
        assert self.translated is not None
        ids: list[str] = []
        for spec in self.translated.functions.values():
            value = spec.environment.get(variable)
            if isinstance(value, dict) and isinstance(value.get("Ref"), str):
                res = self.translated.resources.get(value["Ref"], {})
                if res.get("Type") == SECRET:
                    ids.append(value["Ref"])
        return ids

    def _register_roles(self) -> None:
        """Every function calls AWS as its own role, and moto enforces the role's policies (local_stack/iam)."""
        assert self.translated is not None
        assert self.resources is not None
        resolve = self.resources.resolver.resolve
        roles = function_roles(self.translated, lambda _function_id: resolve)
        arns = {
            function_id: role_session_arn(
                f"{self.config.stack_name}-{role_id_of(self.translated, function_id)}",
                self.resources.ref(function_id),
                ACCOUNT_ID,
            )
            for function_id in roles
        }
        register([self.moto.endpoint_url, self.moto.dynamodb_endpoint_url], roles, arns=arns)

    def iam_report(self) -> dict[str, Any]:
        """What the local IAM checked and refused, per function, since the stack started (every moto process)."""
        merged: dict[str, Any] = {"checked": {}, "refused": {}, "refusals": []}
        for endpoint in dict.fromkeys([self.moto.endpoint_url, self.moto.dynamodb_endpoint_url]):
            part = iam_report(endpoint)
            for key in ("checked", "refused"):
                for name, count in part[key].items():
                    merged[key][name] = merged[key].get(name, 0) + count
            merged["refusals"].extend(part["refusals"])
        return merged

    def _build_functions(self) -> None:
        assert self.translated is not None
        assert self.resources is not None
        envs: dict[str, dict[str, str]] = {}
        for logical_id, spec in self.translated.functions.items():
            env = {k: self.resources.resolver.resolve_str(v) for k, v in spec.environment.items()}
            envs[logical_id] = env
            self.functions[logical_id] = LocalFunction(
                logical_id=logical_id,
                function_name=self.resources.ref(logical_id),
                code_dir=spec.code_dir,
                handler=spec.handler,
                timeout_seconds=spec.timeout_seconds,
                memory_mb=spec.memory_mb,
                environment=env,
                on_invocation=self._record,
            )
        # One process, one os.environ: every function's variables at once (see lambda_runtime).
        merged = merge_environments(envs)
        self._saved_env = apply_environment(merged)
        self._imports.enter()
        if self.config.function_log is not None:
            # Installed before the cold starts: Powertools' logger keeps the stream it finds at import.
            self.config.function_log.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.config.function_log.open("a", encoding="utf-8")
            self._stdout = sys.stdout
            self._function_output = FunctionOutput(sys.stdout, self._log_file)
            sys.stdout = self._function_output
            self._redirected = _redirect_stream_handlers(self._stdout, self._function_output)
        for fn in self.functions.values():
            if fn.code_dir.is_dir() and (fn.code_dir / (fn.handler.rpartition(".")[0] + ".py")).is_file():
                fn.load()  # cold starts now, so a broken import fails `start()` rather than the first event
            else:
                log.warning("%s: no handler at %s; its events will fail", fn.logical_id, fn.code_dir)

    def _start_event_sources(self) -> None:
        assert self.translated is not None
        assert self.resources is not None
        sqs = self.moto.client("sqs")
        for spec in self.translated.functions.values():
            fn = self.functions[spec.logical_id]
            for source in spec.sqs_sources:
                if not source.enabled:
                    continue
                queue_url = self.resources.ref(source.queue_id)
                override = self.config.visibility_timeout_seconds
                if isinstance(override, dict):
                    override = override.get(source.queue_id)
                if override is not None:
                    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(override)})
                poller = SqsPoller(
                    source,
                    fn,
                    queue_url=queue_url,
                    queue_arn=self.resources.get_att(source.queue_id, "Arn"),
                    client_factory=lambda: self.moto.client("sqs"),
                    default_concurrency=self.config.default_concurrency,
                )
                poller.start()
                self.pollers.append(poller)
            if spec.url_id is not None:
                self.function_url.function = fn
            for schedule in spec.schedules:
                runner = ScheduleRunner(schedule, fn, self.config.schedule_interval_seconds)
                self.schedules.append(runner)
                if schedule.enabled and self.config.schedule_interval_seconds > 0:
                    runner.start()
        self.function_url.start()

    def stop(self) -> None:
        """Stop everything this stack started, in reverse order; safe to call twice."""
        if not self._started:
            return
        self._started = False
        # Event sources first (they need moto and the emulator until their last invocation returns), all
        # signalled before any is joined so their in-progress long polls end together.
        sources: list[SqsPoller | ScheduleRunner] = [*self.schedules, *self.pollers]
        for source in sources:
            source.request_stop()
        for source in sources:
            source.stop()
        stoppers = [threading.Thread(target=self.function_url.stop, name="stop-function-url")]
        if self.emulator is not None:
            stoppers.append(threading.Thread(target=self.emulator.stop, name="stop-emulator"))
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        self.moto.stop()
        restore_environment(self._saved_env)
        self._saved_env = {}
        self._imports.exit(self.functions)
        if self._stdout is not None:
            for handler in self._redirected:
                handler.setStream(self._stdout)
            self._redirected = []
            sys.stdout = self._stdout
            self._stdout = None
        if self._function_output is not None:
            # Loggers created in this stack's cold starts keep this stream for the process's life (the stdlib
            # "cutout" logger outlives the fresh imports): once the file is closed, it writes to the original.
            self._function_output.detach_sink()
            self._function_output = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # -- what tests and tools use ------------------------------------------------------------------------------
    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise RuntimeError("the local stack is not started")
        return self._endpoints

    def _make_endpoints(self, aws: str, magic_hour: str, webhook: str) -> Endpoints:
        assert self.resources is not None
        assert self.translated is not None
        # The input/output settings as the functions see them (one source: the resolved environment).
        env: dict[str, str] = {}
        for fn in self.functions.values():
            env.update(fn.environment)
        bucket = env.get("SOURCE_BUCKET") or next(iter(self.resources.of_type("AWS::S3::Bucket").values()), "")
        queues = {logical_id: url for logical_id, url in self.resources.of_type("AWS::SQS::Queue").items()}
        tables = self.resources.of_type("AWS::DynamoDB::Table")
        return Endpoints(
            aws=aws,
            region=REGION,
            magic_hour=magic_hour,
            webhook=webhook,
            bucket=bucket,
            input_prefix=env.get("INPUT_PREFIX", ""),
            output_bucket=env.get("OUTPUT_BUCKET") or bucket,
            output_prefix=env.get("OUTPUT_PREFIX", ""),
            table=env.get("JOBS_TABLE") or next(iter(tables.values()), ""),
            queues=queues,
            stack_outputs=dict(self.resources.outputs),
        )

    def client(self, service: str) -> Any:
        return self.moto.client(service)

    def _record(self, invocation: Invocation) -> None:
        with self._invocations_lock:
            self.invocations.append(invocation)

    def upload(self, source: Path | str | bytes, key: str | None = None) -> Uploaded:
        """Put an object under the input prefix (``key`` is relative to it unless it already starts with it)."""
        ep = self.endpoints
        if isinstance(source, bytes):
            if key is None:
                raise ValueError("key is required when uploading bytes")
            body = source
        else:
            path = Path(source)
            body = path.read_bytes()
            key = key or path.name
        if not key.startswith(ep.input_prefix):
            key = ep.input_prefix + key
        response = self.client("s3").put_object(Bucket=ep.bucket, Key=key, Body=body)
        etag = str(response["ETag"]).strip('"')
        return Uploaded(key, etag, response.get("VersionId"), job_id_for(ep.bucket, key, etag))


def _redirect_stream_handlers(original: Any, replacement: Any) -> list[logging.StreamHandler[Any]]:
    """Point every logging handler that writes to `original` at `replacement`; the handlers changed.

    Powertools' Logger keeps the stream it found when the first Logger of its service was made: when the
    process made one before the stack started (a test's fixture importing the shared layer, a harness), the
    functions' log lines would bypass the function log and its readers (the soak's and the flood's slot repairs).
    """
    loggers = [
        logging.getLogger(),
        *(x for x in logging.root.manager.loggerDict.values() if isinstance(x, logging.Logger)),
    ]
    changed: list[logging.StreamHandler[Any]] = []
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and handler.stream is original:
                handler.setStream(replacement)
                changed.append(handler)
    return changed


__all__ = [
    "LOCAL_PARAMETERS",
    "PROJECT_ROOT",
    "REAL_MAGIC_HOUR_URL",
    "Endpoints",
    "LocalStack",
    "LocalStackConfig",
    "Uploaded",
    "is_job_record",
    "job_id_for",
    "redrive_messages",
]
