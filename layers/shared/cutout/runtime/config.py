"""Function configuration, read from the environment once per cold start.

Only non-secret values live in the environment; secrets are referenced by their Secrets Manager id.
"""

# No `from __future__ import annotations` in this module: a NamedTuple turns string annotations into ForwardRefs,
# compiling each one (~12 us a field at cold start; Settings' 25 fields ~0.3 ms). Forward references are quoted.
import os
from functools import lru_cache
from typing import NamedTuple

from cutout.domain.errors import InvalidEnvironment
from cutout.domain.models import MAX_SLOTS, prefix_clash


def _prefix(value: str) -> str:
    # Prefixes are compared with str.startswith, so normalise to "a/b/" (or "" for the whole bucket).
    value = value.strip().lstrip("/")
    return value if not value or value.endswith("/") else value + "/"


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidEnvironment(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise InvalidEnvironment(f"{name} must be >= {minimum}, got {value}")
    return value


def _queue_url(env: dict[str, str], name: str) -> str:
    """An SQS queue URL (what CloudFormation's `!Ref` of a queue gives), or "" when unset."""
    value = env.get(name, "").strip()
    if value and not value.startswith(("https://", "http://")):
        raise InvalidEnvironment(f"{name} must be a queue URL, got {value!r}")
    return value


def _max_jobs_in_flight(env: dict[str, str]) -> int:
    value = _int(env, "MAX_JOBS_IN_FLIGHT", 0)
    if not value:
        return 0
    if value > MAX_SLOTS:
        raise InvalidEnvironment(
            f"MAX_JOBS_IN_FLIGHT must be <= {MAX_SLOTS} (one BatchGetItem reads every slot), got {value}"
        )
    return value


class Settings(NamedTuple):
    """Immutable; `settings._replace(name=value)` for a variant (tests, the soak). A NamedTuple rather than a frozen
    dataclass: ~0.7 ms of cold start instead of ~2 ms (25 fields; a dataclass compiles its methods at import)."""

    jobs_table: str
    input_prefix: str
    output_prefix: str
    source_bucket: str
    output_bucket: str
    magic_hour_base_url: str
    api_key_secret_id: str
    webhook_secret_id: str
    presign_expires_seconds: int
    default_background_key: str
    background_prefix: str
    max_input_bytes: int
    max_output_bytes: int
    asset_transfer: str
    poll_queue_url: str
    completion_queue_url: str
    ingest_queue_url: str
    event_bus_name: str
    poll_first_delay_seconds: int
    poll_max_delay_seconds: int
    poll_max_attempts: int
    poll_max_wait_seconds: int
    daily_credit_budget: int
    submit_lease_seconds: int
    # Most Magic Hour projects unfinished at once (admission.py). The template always sets it (default 3);
    # 0, the value when unset, turns admission off (every upload is created at once, as before it existed).
    max_jobs_in_flight: int = 0
    # How long a slot stays held by a create whose outcome is unknown, counted from when it became unknown
    # (reconcile.py says why this bound, and what freeing it early or late costs).
    unknown_outcome_hold_seconds: int = 5
    # Renditions (the renditions function; the submit gets the prefix so its skip filter ignores it). The prefix is
    # in the output bucket, beside the cutouts; "" when the stack makes none (the paid path's tests).
    renditions_prefix: str = ""
    presets_parameter: str = ""
    # A decoded cutout above this many pixels is refused (a decompression bomb, or beyond the function's memory).
    max_rendition_pixels: int = 40_000_000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        jobs_table = env.get("JOBS_TABLE", "").strip()
        if not jobs_table:
            raise InvalidEnvironment("JOBS_TABLE is required")
        input_prefix = _prefix(env.get("INPUT_PREFIX", "incoming/"))
        output_prefix = _prefix(env.get("OUTPUT_PREFIX", "cutouts/"))
        output_bucket = env.get("OUTPUT_BUCKET", "").strip()
        if not output_bucket and not output_prefix:
            raise InvalidEnvironment("OUTPUT_PREFIX must be set when results go to the source bucket")
        if not output_bucket and output_prefix == input_prefix:
            raise InvalidEnvironment("INPUT_PREFIX and OUTPUT_PREFIX must differ (recursion)")
        background_prefix = _prefix(env.get("BACKGROUND_PREFIX", "backgrounds/")) or "backgrounds/"
        if input_prefix.startswith(background_prefix):
            # Every upload would lie under the backgrounds, which are never submitted: the stack would do nothing.
            raise InvalidEnvironment("INPUT_PREFIX must not lie under BACKGROUND_PREFIX (backgrounds are not uploads)")
        transfer = env.get("ASSET_TRANSFER", "presign").strip() or "presign"
        if transfer not in {"presign", "upload"}:
            raise InvalidEnvironment(f"ASSET_TRANSFER must be 'presign' or 'upload', got {transfer!r}")
        presign = _int(env, "PRESIGN_EXPIRES_SECONDS", 3600, minimum=60)
        budget = _int(env, "DAILY_CREDIT_BUDGET", 0)
        ingest_queue_url = _queue_url(env, "INGEST_QUEUE_URL")
        if budget > 0 and not ingest_queue_url:
            # A spent budget parks the upload in its own queue: without the queue it could only fail the record.
            raise InvalidEnvironment("INGEST_QUEUE_URL is required when DAILY_CREDIT_BUDGET is set")
        renditions_prefix = _prefix(env.get("RENDITIONS_PREFIX", ""))
        background_prefix = _prefix(env.get("BACKGROUND_PREFIX", "backgrounds/")) or "backgrounds/"
        source_bucket = env.get("SOURCE_BUCKET", "").strip()
        elsewhere = bool(output_bucket) and output_bucket != source_bucket
        clash = prefix_clash(renditions_prefix, input_prefix, output_prefix, background_prefix, elsewhere)
        if clash:
            raise InvalidEnvironment(clash)
        return cls(
            jobs_table=jobs_table,
            input_prefix=input_prefix,
            output_prefix=output_prefix,
            source_bucket=source_bucket,
            output_bucket=output_bucket,
            magic_hour_base_url=(env.get("MAGIC_HOUR_BASE_URL", "").strip() or "https://api.magichour.ai").rstrip("/"),
            api_key_secret_id=env.get("MAGIC_HOUR_API_KEY_SECRET", "").strip(),
            webhook_secret_id=env.get("MAGIC_HOUR_WEBHOOK_SECRET", "").strip(),
            presign_expires_seconds=min(presign, 7 * 24 * 3600),
            default_background_key=env.get("DEFAULT_BACKGROUND_KEY", "").strip().lstrip("/"),
            background_prefix=background_prefix,
            max_input_bytes=_int(env, "MAX_INPUT_BYTES", 20 * 1024 * 1024, minimum=1),
            max_output_bytes=_int(env, "MAX_OUTPUT_BYTES", 50 * 1024 * 1024, minimum=1),
            asset_transfer=transfer,
            poll_queue_url=env.get("POLL_QUEUE_URL", "").strip(),
            completion_queue_url=env.get("COMPLETION_QUEUE_URL", "").strip(),
            ingest_queue_url=ingest_queue_url,
            event_bus_name=env.get("EVENT_BUS_NAME", "").strip() or "default",
            poll_first_delay_seconds=_int(env, "POLL_FIRST_DELAY_SECONDS", 4),
            # SQS caps DelaySeconds at 900.
            poll_max_delay_seconds=min(_int(env, "POLL_MAX_DELAY_SECONDS", 120, minimum=1), 900),
            poll_max_attempts=_int(env, "POLL_MAX_ATTEMPTS", 30, minimum=1),
            poll_max_wait_seconds=_int(env, "POLL_MAX_WAIT_SECONDS", 3600, minimum=1),
            daily_credit_budget=budget,
            submit_lease_seconds=_int(env, "SUBMIT_LEASE_SECONDS", 120, minimum=1),
            max_jobs_in_flight=_max_jobs_in_flight(env),
            unknown_outcome_hold_seconds=_int(env, "UNKNOWN_OUTCOME_HOLD_SECONDS", 5),
            renditions_prefix=renditions_prefix,
            presets_parameter=env.get("PRESETS_PARAMETER", "").strip(),
            max_rendition_pixels=_int(env, "MAX_RENDITION_PIXELS", 40_000_000, minimum=1),
        )

    def output_bucket_for(self, source_bucket: str) -> str:
        return self.output_bucket or source_bucket

    def stack_owned_prefixes(self) -> tuple[str, ...]:
        """Key prefixes the stack reads or writes for itself, never uploads to cut out, whatever the input prefix
        (backgrounds now; a prefix the stack adds later joins this one tuple). The output prefix is not among them:
        it is the stack's only in the output bucket (inspection.skip_reason)."""
        return (self.background_prefix,)

    def stack_owned_keys(self) -> tuple[str, ...]:
        """Single keys the stack reads for itself (the default background may lie outside the background prefix)."""
        return (self.default_background_key,) if self.default_background_key else ()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this execution environment (validated on first use, i.e. at cold start)."""
    return Settings.from_env()
