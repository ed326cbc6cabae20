"""The local stack's options (``LocalStackConfig``), the endpoints it serves, and an uploaded object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[3]
REAL_MAGIC_HOUR_URL = "https://api.magichour.ai"

# Template parameters the local stack overrides by default: short poll delays so a job that misses its webhook
# still finishes in seconds. Callers' ``parameters`` win.
LOCAL_PARAMETERS: dict[str, str] = {
    "PollFirstDelaySeconds": "1",
    "PollMaxDelaySeconds": "2",
    "PollMaxAttempts": "60",
}


@dataclass
class LocalStackConfig:
    """How to run the local stack. Every field has a local default; see ``cutout local up --help``."""

    template: Path = PROJECT_ROOT / "template.yaml"
    stack_name: str = "cutout-local"
    # Template parameter overrides (on top of LOCAL_PARAMETERS), e.g. {"InputPrefix": "uploads/"}.
    parameters: dict[str, Any] = field(default_factory=dict)
    # Emulator: webhooks on/off, and any EmulatorConfig field (render_seconds, fault rates, seed, ...).
    webhooks: bool = True
    emulator: dict[str, Any] = field(default_factory=dict)
    # Real Magic Hour instead of the emulator, with the key in MAGIC_HOUR_API_KEY. Only ever True when asked
    # explicitly (the CLI's and the demo's --real-magic-hour, after a confirmation): an exported key alone never
    # switches it on, because it spends real credits. Uses asset transfer "upload" (Magic Hour cannot fetch a
    # loopback presigned URL) and polling (it cannot reach the loopback webhook).
    real_magic_hour: bool = False
    # Concurrent invocations per SQS event source without ScalingConfig.MaximumConcurrency.
    default_concurrency: int = 5
    # Local period of schedule-triggered functions (the sweeper); 0 disables them.
    schedule_interval_seconds: float = 60.0
    # Overrides source queues' visibility timeout (seconds): failed messages come back sooner than the
    # template's production value (6x the function timeout). An int applies to every queue with an event
    # source, a dict to the named queues (logical ids). None keeps the template's. Keep it above the source's
    # batching window plus processing time, as on AWS, or batches are redelivered while still in flight.
    visibility_timeout_seconds: int | dict[str, int] | None = None
    # Where the functions' stdout (Powertools JSON logs, EMF metrics) goes; None = this process's stdout.
    function_log: Path | None = None
    # moto in a process of its own rather than a thread of this one (MotoServer says when that matters).
    aws_in_own_process: bool = False
    # The account's Lambda concurrency quota the deploy rules refuse reservations against (AWS's default is 1,000;
    # a new account's is 10): deploy_rules.reserved_concurrency.
    account_concurrency_quota: int = 1000


@dataclass(frozen=True)
class Endpoints:
    """Where everything is, as a person or a test needs it."""

    aws: str
    region: str
    magic_hour: str
    webhook: str
    bucket: str
    input_prefix: str
    output_bucket: str
    output_prefix: str
    table: str
    queues: dict[str, str]
    stack_outputs: dict[str, str]

    def aws_cli_upload_line(self, path: str = "image.png") -> str:
        return f"aws --endpoint-url {self.aws} s3 cp {path} s3://{self.bucket}/{self.input_prefix}"


@dataclass(frozen=True)
class Uploaded:
    key: str
    etag: str
    version_id: str | None
    job_id: str
