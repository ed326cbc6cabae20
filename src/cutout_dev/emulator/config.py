"""Emulator configuration: timing, auth, webhooks and fault injection.

The config is a frozen dataclass so a running server can swap it atomically
(``EmulatorServer.configure``) while worker threads read a consistent snapshot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

# Contract §4: the image extensions the API accepts for upload and for URL inputs.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    "png",
    "jpg",
    "jpeg",
    "jfif",
    "heic",
    "heif",
    "webp",
    "avif",
    "jp2",
    "tiff",
    "tif",
    "bmp",
)
VIDEO_EXTENSIONS: tuple[str, ...] = ("mp4", "m4v", "mov", "webm")
AUDIO_EXTENSIONS: tuple[str, ...] = (
    "mp3",
    "wav",
    "aac",
    "flac",
    "webm",
    "weba",
    "m4a",
    "opus",
    "ogg",
    "oga",
    "aiff",
    "amr",
)
UPLOAD_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image": IMAGE_EXTENSIONS,
    "video": VIDEO_EXTENSIONS,
    "audio": AUDIO_EXTENSIONS,
}

WEBHOOK_EVENTS: tuple[str, ...] = ("image.started", "image.completed", "image.errored")
CREDITS_PER_IMAGE = 5

Malformed = Literal["bad_json", "missing_fields", "unknown_status", "wrong_content_type"]
MALFORMED_MODES: tuple[str, ...] = get_args(Malformed)
PlanMode = Literal["queue", "reject"]
PLAN_MODES: tuple[str, ...] = get_args(PlanMode)
# Endpoints that the generic transport faults (429 / 5xx / reset) and malformed bodies can target.
FAULT_ENDPOINTS: tuple[str, ...] = ("create", "get", "delete", "upload_urls")

_RATE_FIELDS = (
    "rate_429",
    "rate_5xx",
    "rate_500_after_create",
    "rate_reset",
    "latency_spike_rate",
    "render_error_rate",
    "cancel_rate",
    "never_complete_rate",
    "drop_webhook_rate",
    "duplicate_webhook_rate",
    "expired_download_rate",
    "garbage_download_rate",
)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour. All rates are probabilities in [0, 1]."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    api_key: str = "emulator-key"
    # More accepted API keys, each with its own plan limit (models several accounts on one emulator).
    extra_api_keys: tuple[str, ...] = ()
    # Base URL put into download/upload URLs; empty = the server's own http://host:port.
    public_base_url: str = ""

    # Lifecycle timing (seconds): queued -> rendering after queue_seconds, then the render
    # (a real fetch + Pillow work) finishes no earlier than render_seconds later.
    queue_seconds: float = 0.05
    render_seconds: float = 0.2
    fetch_timeout_seconds: float = 10.0
    max_input_bytes: int = 50 * 1024 * 1024
    # The cutout (matte.py): on a plain background, pixels within this per-channel distance of the top-left
    # colour become transparent; other backgrounds are keyed by a colour model learned from the border.
    background_threshold: int = 24
    # Turn the input upright by its EXIF Orientation before the cutout. Magic Hour does not document what it does;
    # off = the pixels as stored, the case a pipeline must survive (docs/hostile-inputs.md, "EXIF orientation").
    exif_transpose: bool = False

    # The plan's concurrent generations per API key (Creator 3, Pro 5); 0 = unlimited. What Magic Hour
    # does beyond it is undocumented, so both answers are modelled (plan.py): "queue" (the excess stays
    # `queued` and starts when a slot frees) or "reject" (429 while `plan_concurrency` are unfinished).
    # A never_complete project holds its slot for good, like a stuck job on a real plan.
    plan_concurrency: int = 0
    plan_mode: PlanMode = "queue"

    initial_credits: int = 1_000_000
    download_ttl_seconds: int = 86_400
    upload_ttl_seconds: int = 3_600

    # Webhooks (contract §5). Empty url = no deliveries.
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_events: tuple[str, ...] = WEBHOOK_EVENTS
    webhook_max_attempts: int = 4
    webhook_base_delay_seconds: float = 0.05  # the real service starts at 1 s; tests want speed
    webhook_timeout_seconds: float = 5.0

    # Fault injection. `seed` makes every roll reproducible (one RNG stream per fault kind).
    seed: int | None = None
    fault_endpoints: tuple[str, ...] = ("create",)  # targets of rate_429 / rate_5xx / rate_reset
    rate_429: float = 0.0
    rate_5xx: float = 0.0  # 500/502/503 before any project exists
    rate_500_after_create: float = 0.0  # project created and charged, then 500 (ambiguous)
    rate_reset: float = 0.0  # connection dropped without a response
    reset_after_create: bool = False  # with rate_reset on create: create + charge, then drop
    latency_seconds: float = 0.0
    latency_spike_rate: float = 0.0
    latency_spike_seconds: float = 2.0
    render_error_rate: float = 0.0
    # Magic Hour's code for a render that failed for no fault of the input ("Unexpected error"); set a documented
    # file code (invalid_image_file, invalid_file_format, file_too_large, ...) to model a refused input.
    render_error_code: str = "unknown_error"
    cancel_rate: float = 0.0
    never_complete_rate: float = 0.0
    drop_webhook_rate: float = 0.0
    duplicate_webhook_rate: float = 0.0
    expired_download_rate: float = 0.0
    garbage_download_rate: float = 0.0
    # Hostile 200s: bad_json (truncated body), missing_fields (drops required keys), unknown_status
    # (GET only: status "processing"), wrong_content_type (valid JSON sent as text/html). On create
    # the project is still made and charged, which is what makes a malformed 200 ambiguous.
    malformed: Malformed | None = None
    malformed_targets: tuple[str, ...] = ("create", "get")
    # Answer every create with this 4xx (e.g. 400/403/422) and the documented {"message"} body, before any
    # project exists: how Magic Hour refuses an input or a plan. None = off.
    create_error_status: int | None = None
    create_error_message: str = "Unable to create image"

    def __post_init__(self) -> None:
        self._check_rates_and_switches()
        if self.malformed is not None and self.malformed not in MALFORMED_MODES:
            raise ValueError(f"malformed must be one of {MALFORMED_MODES} or None, got {self.malformed!r}")
        unknown = set(self.webhook_events) - set(WEBHOOK_EVENTS)
        if unknown:
            raise ValueError(f"unknown webhook events: {sorted(unknown)}")
        bad_targets = (set(self.fault_endpoints) | set(self.malformed_targets)) - set(FAULT_ENDPOINTS)
        if bad_targets:
            raise ValueError(f"unknown fault endpoints: {sorted(bad_targets)}; known: {FAULT_ENDPOINTS}")
        if self.plan_mode not in PLAN_MODES:
            raise ValueError(f"plan_mode must be one of {PLAN_MODES}, got {self.plan_mode!r}")
        if self.plan_concurrency < 0:
            raise ValueError("plan_concurrency must be >= 0 (0 = unlimited)")
        if self.webhook_max_attempts < 1:
            raise ValueError("webhook_max_attempts must be >= 1")
        for name in ("queue_seconds", "render_seconds", "latency_seconds", "latency_spike_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    def _check_rates_and_switches(self) -> None:
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        for name in ("exif_transpose", "reset_after_create"):  # a JSON "false" string must not read as true
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def with_changes(self, **changes: Any) -> EmulatorConfig:
        """A validated copy; lists from JSON become tuples so the result stays hashable/frozen."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown config fields: {unknown}")
        normalized: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
        return dataclasses.replace(self, **normalized)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
