"""Which stack the ops commands act on: a deployed one (``--stack NAME``) or the running local stack.

Both are found the same way — CloudFormation DescribeStacks, outputs and parameters — because the local stack
creates its resources through moto's CloudFormation from ``template.yaml`` too. The local stack only adds where
moto listens (``.local-stack/endpoints.json``, written by ``cutout local up``), so every command runs the same
code against both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

PROJECT_ROOT = Path(__file__).resolve().parents[3]  # as local_stack's (not imported: it loads moto's server)
# Where `cutout local up` says where it listens. CUTOUT_LOCAL_STACK_FILE points elsewhere (tests, two checkouts).
LOCAL_STATE_FILE = PROJECT_ROOT / ".local-stack" / "endpoints.json"
LOCAL_STACK_NAME = "cutout-local"

# The pipeline's queues and the DLQ each redrives to (the template's RedrivePolicy pairs; outputs are named
# after the logical ids, e.g. IngestDLQUrl / IngestDLQArn).
QUEUE_PAIRS: dict[str, str] = {
    "IngestDLQ": "IngestQueue",
    "PollDLQ": "PollQueue",
    "CompletionDLQ": "CompletionQueue",
    "RenditionsDLQ": "RenditionsQueue",
}
FUNCTIONS = ("Submit", "Webhook", "Poll", "Finalize", "Sweeper")


class TargetError(Exception):
    """The stack cannot be found or lacks what a command needs (exit status 1)."""


def local_state_file() -> Path:
    return Path(os.environ.get("CUTOUT_LOCAL_STACK_FILE") or LOCAL_STATE_FILE)


@dataclass(frozen=True)
class QueueRef:
    name: str  # logical id, e.g. IngestDLQ
    url: str
    arn: str | None  # None on stacks deployed before the ARN outputs existed


@dataclass(frozen=True)
class StackTarget:
    """Everything the ops commands need to know about one stack, from its outputs and parameters."""

    stack_name: str
    session: boto3.Session
    endpoint_url: str | None  # None = boto3's own resolution (AWS, or AWS_ENDPOINT_URL)
    local: bool
    outputs: dict[str, str]
    parameters: dict[str, str]
    # The local stack's function log (what CloudWatch Logs holds for a deployed stack), from its state file.
    local_logs: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # -- clients -------------------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """One client per service (clients are thread-safe; sessions are not, so create them here, once)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
            )
        return self._clients[service]

    @property
    def region(self) -> str:
        return str(self.session.region_name or "us-east-1")

    # -- what the outputs say --------------------------------------------------------------------------------
    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            raise TargetError(f"stack {self.stack_name} has no output {key} (deployed from an older template?)")
        return value

    @property
    def table(self) -> str:
        return self.output("JobsTableName")

    @property
    def bucket(self) -> str:
        return self.output("BucketName")

    @property
    def input_prefix(self) -> str:
        return self.parameters.get("InputPrefix", _after_bucket(self.outputs.get("InputS3Uri", "")))

    def key_prefix(self, value: str | None) -> str:
        """What ``--prefix`` means in every command (upload, jobs, backfill, retry): a key prefix relative to the
        input prefix, so ``shop/`` is ``incoming/shop/``; a value already under the input prefix is taken as it is
        (``incoming/shop/`` stays that), and so is ``s3://bucket/key-prefix`` (its key part)."""
        value = value or ""
        if value.startswith("s3://"):
            return value.removeprefix("s3://").partition("/")[2]
        value = value.lstrip("/")
        return value if value.startswith(self.input_prefix) else self.input_prefix + value

    @property
    def output_bucket(self) -> str:
        uri = self.outputs.get("OutputS3Uri", "")
        return uri.removeprefix("s3://").partition("/")[0] or self.bucket

    @property
    def output_prefix(self) -> str:
        return self.parameters.get("OutputPrefix", _after_bucket(self.outputs.get("OutputS3Uri", "")))

    def queue(self, name: str) -> QueueRef:
        return QueueRef(name, self.output(f"{name}Url"), self.outputs.get(f"{name}Arn") or None)

    @property
    def dead_letter_queues(self) -> dict[str, QueueRef]:
        return {dlq: self.queue(dlq) for dlq in QUEUE_PAIRS if f"{dlq}Url" in self.outputs}

    def source_queue(self, dlq: str) -> QueueRef:
        if dlq not in QUEUE_PAIRS:
            raise TargetError(f"{dlq} is not a DLQ of the stack ({', '.join(QUEUE_PAIRS)})")
        return self.queue(QUEUE_PAIRS[dlq])

    @property
    def renditions_prefix(self) -> str:
        return self.parameters.get("RenditionsPrefix") or "renditions/"

    @property
    def presets_parameter(self) -> str:
        """The SSM parameter holding the presets document (a stack without the renditions step has none)."""
        return self.output("PresetsParameterName")

    @property
    def alarm_prefix(self) -> str:
        return self.outputs.get("AlarmNamePrefix") or f"{self.stack_name}/"

    @property
    def dashboard_name(self) -> str:
        return self.outputs.get("DashboardName") or self.stack_name

    @property
    def dashboard_url(self) -> str | None:
        return self.outputs.get("DashboardUrl") or None

    @property
    def log_groups(self) -> dict[str, str]:
        """Function (Submit, ...) → log group name, from the ``<Function>LogGroupName`` outputs."""
        return {fn: self.outputs[f"{fn}LogGroupName"] for fn in FUNCTIONS if self.outputs.get(f"{fn}LogGroupName")}

    @property
    def daily_credit_budget(self) -> int:
        """Credits per UTC day (0 = unlimited), as deployed."""
        return _int(self.parameters.get("DailyCreditBudget"), 0)

    @property
    def maximum_concurrency(self) -> int:
        return _int(self.parameters.get("MaximumConcurrency"), 3)


def _after_bucket(uri: str) -> str:
    return uri.removeprefix("s3://").partition("/")[2]


def _int(value: str | None, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def describe(
    stack_name: str,
    session: boto3.Session,
    endpoint_url: str | None,
    *,
    local: bool,
    local_logs: str | None = None,
) -> StackTarget:
    """Look the stack up through CloudFormation (DescribeStacks: outputs and parameters)."""
    cfn = session.client("cloudformation", endpoint_url=endpoint_url)
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise TargetError(f"stack {stack_name}: {exc.response.get('Error', {}).get('Message', exc)}") from exc
    except BotoCoreError as exc:  # no credentials, endpoint unreachable (a stale local endpoints file), ...
        where = f" at {endpoint_url}" if endpoint_url else ""
        raise TargetError(f"stack {stack_name}{where}: {exc}") from exc
    if not stacks:
        raise TargetError(f"stack {stack_name} not found")
    stack = stacks[0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    return StackTarget(stack_name, session, endpoint_url, local, outputs, parameters, local_logs)


def aws_cli_region(flag: str | None) -> str | None:
    """The region as the AWS CLI picks it: ``--region``, then ``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then
    the profile's ``region``. boto3 reads ``AWS_DEFAULT_REGION`` and the profile itself but not ``AWS_REGION``
    (AWS CLI User Guide, "Environment variables to configure the AWS CLI": AWS_REGION "overrides the values in the
    environment variable AWS_DEFAULT_REGION and the profile setting region"; ``--region`` overrides it)."""
    return flag or os.environ.get("AWS_REGION") or None


def resolve(stack: str | None, profile: str | None = None, region: str | None = None) -> StackTarget:
    """``--stack NAME`` (with the usual profile/region resolution), else the running local stack."""
    if stack:
        try:
            session = boto3.Session(profile_name=profile, region_name=aws_cli_region(region))
        except BotoCoreError as exc:  # ProfileNotFound, a malformed config file
            raise TargetError(str(exc)) from exc
        if not session.region_name:
            raise TargetError(
                f"stack {stack}: no AWS region: pass --region R (or set AWS_REGION, or region in the profile)"
            )
        return describe(stack, session, None, local=False)
    state_file = local_state_file()
    if not state_file.exists():
        raise TargetError("no local stack running (start one with: cutout local up), and no --stack NAME given")
    state = read_local_state(state_file)
    if state is None:
        raise TargetError(
            f"the local stack is not running any more (stale {state_file}); start one with: cutout local up"
        )
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
        region_name=str(state.get("region") or "us-east-1"),
    )
    logs = str(state["function_log"]) if state.get("function_log") else None
    return describe(
        str(state.get("stack_name") or LOCAL_STACK_NAME), session, str(state["aws"]), local=True, local_logs=logs
    )


def read_local_state(state_file: Path) -> dict[str, Any] | None:
    """What ``cutout local up`` wrote, or None when the process it names has gone (a kill -9, a crash)."""
    try:
        state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    if isinstance(pid, int) and not pid_alive(pid):
        return None
    return state


def pid_alive(pid: int) -> bool:
    """Whether the process runs: it exists (signal 0 sends nothing) and, where /proc tells, is not a zombie (it
    has exited, and waits only for its parent to collect its status)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True  # no /proc (macOS): signal 0 is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]  # the state follows the "(name)" field
