"""Magic Hour API emulator (dev only): the background-remover endpoints, uploads, signed
downloads, signed webhooks, a credit ledger, deterministic fault injection and a per-key plan
concurrency limit (``plan_concurrency``/``plan_mode``, read back with ``/_emulator/plan``).

In-process: ``with EmulatorServer(EmulatorConfig(...)) as emu: emu.base_url``.
Out of process: ``python -m cutout_dev.emulator --port 8787`` and the ``/_emulator/*`` control API.
"""

from .config import IMAGE_EXTENSIONS, PLAN_MODES, WEBHOOK_EVENTS, EmulatorConfig
from .plan import PlanCounts, PlanStats, key_id
from .render import RenderError, remove_background
from .server import EmulatorServer
from .state import CreateRecord, EmulatorState, LedgerEntry, Project, WebhookAttempt
from .webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

__all__ = [
    "IMAGE_EXTENSIONS",
    "PLAN_MODES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WEBHOOK_EVENTS",
    "CreateRecord",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "LedgerEntry",
    "PlanCounts",
    "PlanStats",
    "Project",
    "RenderError",
    "WebhookAttempt",
    "key_id",
    "remove_background",
    "sign",
    "verify",
]
