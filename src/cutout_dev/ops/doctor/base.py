"""What every check of ``cutout doctor`` shares: the finding (``Check``), the stack it looks at, how its fixes are
spelled for this target (AWS CLI, ``cutout``, ``sam deploy``), the stored secrets, and small helpers."""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import requests
from botocore.exceptions import ClientError

from cutout_dev.ops.target import StackTarget

Status = Literal["ok", "warn", "fail"]


# The template's parameter for the webhook function's reserved concurrency (0 = none).
RESERVATION_PARAMETER = "WebhookReservedConcurrency"
# "Lambda quotas": the account's concurrent executions quota (Service Quotas code of "Concurrent executions").
CONCURRENCY_QUOTA_CODE = "L-B99A9384"
# AWS keeps this many executions unreserved (fewer on accounts whose whole quota is smaller): "Configuring reserved
# concurrency for a function" (Lambda Developer Guide) - a reservation that would leave less is refused.
UNRESERVED_MINIMUM = 100
LOCAL_DEFAULT_QUOTA = 1000  # LocalStackConfig.account_concurrency_quota's default
DEFAULT_MAGIC_HOUR_URL = "https://api.magichour.ai"
HTTP_TIMEOUT_SECONDS = 10.0
# Read for the Magic Hour key check: an id no project has (GET answers 404 to a valid key, 401 to any other).
PROBE_PROJECT_ID = "cutout-doctor-probe-no-such-project"
# The webhook function caches its secret this long (cutout.aws.secrets.SECRET_MAX_AGE_SECONDS; not imported: the
# shared layer's secrets module loads Powertools).
SECRET_CACHE_SECONDS = 300
ACCEPTED = 202  # cutout.use_cases.webhook answers it to every authentic, well-formed delivery (not imported, as above)
SIGNATURE_HEADER = "magic-hour-event-signature"  # as cutout.magic_hour.webhook_auth and the webhook reference
TIMESTAMP_HEADER = "magic-hour-event-timestamp"


@dataclass(frozen=True)
class Check:
    """One finding: ``fix`` is the command (one per line) that makes it ok; None when ok."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


class DoctorContext:
    """The stack a doctor checks, and how its fixes are spelled (AWS CLI and ``cutout`` commands for this target)."""

    def __init__(
        self,
        target: StackTarget,
        *,
        magic_hour_webhook_secret: str | None = None,
        local_state: dict[str, Any] | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self.target = target
        self.magic_hour_webhook_secret = magic_hour_webhook_secret
        self.local_state = local_state or {}
        self.http = http or requests.Session()

    # -- how the fixes are spelled -------------------------------------------------------------------------------
    @property
    def aws(self) -> str:
        """The AWS CLI as this target needs it (moto accepts any credentials, but the AWS CLI wants some)."""
        if self.target.local:
            return f"AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --endpoint-url {self.target.endpoint_url}"
        words = ["aws"]
        profile = self.target.session.profile_name
        if profile and profile != "default":
            words += ["--profile", profile]
        words += ["--region", self.target.region]
        return " ".join(shlex.quote(w) for w in words)

    @property
    def cutout(self) -> str:
        if self.target.local:
            return "cutout"
        words = ["cutout", "--stack", self.target.stack_name]
        profile = self.target.session.profile_name
        if profile and profile != "default":
            words += ["--profile", profile]
        words += ["--region", self.target.region]
        return " ".join(shlex.quote(w) for w in words)

    def redeploy(self, **overrides: str) -> str:
        """Change a template parameter: ``sam deploy`` on AWS, a restart with ``--param`` locally."""
        if self.target.local:
            return " ".join(["cutout local up", *(f"--param {k}={v}" for k, v in overrides.items())])
        command = f".tools/sam/bin/sam deploy --stack-name {shlex.quote(self.target.stack_name)}"
        if not overrides:
            return command
        # --parameter-overrides replaces every override saved in samconfig.toml (README, Operate): repeat those.
        return command + " --parameter-overrides " + " ".join(f"{k}={v}" for k, v in overrides.items())

    def put_secret(self, logical_id: str, variable: str) -> str:
        """The README's deploy step 4 for one secret."""
        secret_id = shlex.quote(self.secret_id(logical_id))
        fix = f'{self.aws} secretsmanager put-secret-value --secret-id {secret_id} --secret-string "{variable}"'
        if variable == "$WEBHOOK_SECRET":
            fix += f"   # {self.webhook_secret_source()}"
        elif self.target.local:
            fix += f'   # locally: "$(curl -s {self.magic_hour_url}/_emulator/config | jq -r .api_key)"'
        return fix

    def secret_id(self, logical_id: str) -> str:
        return self.target.outputs.get(f"{logical_id}Name") or self.target.output(f"{logical_id}Arn")

    def secret_value(self, logical_id: str) -> str:
        """The secret as the functions read it (a bare value, or a JSON object with one obvious field)."""
        # AWSCURRENT is GetSecretValue's default on AWS; named, because moto answers with the version the secret was
        # last put with even after UpdateSecretVersionStage moved the label.
        sm = self.target.client("secretsmanager")
        raw = sm.get_secret_value(SecretId=self.secret_id(logical_id), VersionStage="AWSCURRENT")
        text = str(raw.get("SecretString") or "").strip()
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                for field in ("api_key", "apiKey", "secret", "webhook_secret", "value"):
                    if isinstance(doc.get(field), str):
                        return str(doc[field])
        return text

    @property
    def magic_hour_url(self) -> str:
        return (self.target.parameters.get("MagicHourBaseUrl") or DEFAULT_MAGIC_HOUR_URL).rstrip("/")

    def webhook_secret_source(self) -> str:
        if self.target.local:
            return f'locally: "$(curl -s {self.magic_hour_url}/_emulator/config | jq -r .webhook_secret)"'
        return "the signing secret Magic Hour's Developer Hub shows for the webhook"


def probe_project() -> dict[str, Any]:
    """A GET /v1/image-projects/{id}-shaped payload whose name is no Cutout job's (``cutout:<job id>``): the
    receiver verifies the signature, then ignores it."""
    return {
        "id": f"cutout-doctor-{secrets.token_hex(8)}",
        "name": "cutout doctor probe (not a Cutout job)",
        "status": "complete",
        "image_count": 0,
        "type": "BACKGROUND_REMOVER",
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "enabled": True,
        "credits_charged": 0,
        "total_frame_cost": 0,
        "downloads": [],
        "error": None,
    }


def as_epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def response_message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "")[:200]
    return ""


def access_denied(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return "AccessDenied" in code or code in (
        "UnauthorizedOperation",
        "AuthorizationError",
        "AuthorizationErrorException",
    )


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"[:300]
