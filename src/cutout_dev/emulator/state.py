"""Thread-safe in-memory state: projects, uploads, the credit ledger and the audit trails.

Every mutation happens under one re-entrant lock. Accessors return copies so callers (tests,
the control API) can read without racing the worker threads.
"""

from __future__ import annotations

import copy
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .config import CREDITS_PER_IMAGE
from .plan import PlanSlots, PlanStats

ProjectStatus = Literal["draft", "queued", "rendering", "complete", "error", "canceled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"complete", "error", "canceled"})

_ALPHABET = string.ascii_lowercase + string.digits


def iso_ms(epoch: float) -> str:
    """ISO-8601 with milliseconds and a Z, the shape every contract example uses."""
    stamp = datetime.fromtimestamp(epoch, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class IdFactory:
    """cuid-like ids: 'c' + 8 chars of ms timestamp + 4 of counter + 12 random = 25 chars."""

    def __init__(self) -> None:
        self._counter = 0
        self._lock = threading.Lock()

    @staticmethod
    def _b36(n: int, width: int) -> str:
        out = ""
        while n:
            n, r = divmod(n, 36)
            out = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + out
        return out.rjust(width, "0")[-width:]

    def new(self) -> str:
        with self._lock:
            self._counter += 1
            counter = self._counter
        rand = "".join(secrets.choice(_ALPHABET) for _ in range(12))
        return "c" + self._b36(int(time.time() * 1000), 8) + self._b36(counter, 4) + rand


@dataclass
class Project:
    id: str
    name: str | None
    assets: dict[str, str]
    created_at: float
    status: ProjectStatus = "queued"
    enabled: bool = True
    credits_charged: int = CREDITS_PER_IMAGE
    error: dict[str, str] | None = None
    output: bytes | None = None
    download_token: str = ""
    # Evidence of the real fetch, compared by tests with the S3 object.
    input_sha256: str | None = None
    input_length: int | None = None
    background_sha256: str | None = None
    background_length: int | None = None
    output_sha256: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    fault: str | None = None  # which injected fault shaped this project, if any

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("output")
        data["output_length"] = len(self.output) if self.output is not None else None
        return data


@dataclass(frozen=True)
class CreateRecord:
    id: str
    timestamp: float
    name: str | None
    assets: dict[str, str]
    headers: dict[str, str]
    outcome: str = "ok"  # ok | 500_after_create | reset_after_create | malformed


@dataclass(frozen=True)
class LedgerEntry:
    kind: Literal["debit", "refund"]
    amount: int
    project_id: str
    timestamp: float


@dataclass(frozen=True)
class Upload:
    file_path: str
    extension: str
    type: str
    token: str
    created_at: float
    data: bytes | None = None


@dataclass
class WebhookAttempt:
    delivery_id: str
    event_type: str
    project_id: str
    attempt: int
    timestamp: float
    url: str
    status_code: int | None = None
    error: str | None = None
    duplicate: bool = False
    body: str = ""
    signature: str = ""
    signed_timestamp: str = ""


@dataclass
class EmulatorState:
    projects: dict[str, Project] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    _creates: list[CreateRecord] = field(default_factory=list)
    _ledger: list[LedgerEntry] = field(default_factory=list)
    _webhook_attempts: list[WebhookAttempt] = field(default_factory=list)
    dropped_webhooks: list[dict[str, str]] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[str] = field(default_factory=Counter)
    # Creates the plan refused (reject mode, the key full): a client that went over its plan, told apart from the
    # injected 429s (which `responses` counts with them).
    plan_refusals: int = 0
    plan: PlanSlots = field(default_factory=PlanSlots, repr=False)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # --- mutations (callers hold no lock; each takes it) ---------------------------------
    def reset(self) -> None:
        with self.lock:
            self.projects.clear()
            self.uploads.clear()
            self._creates.clear()
            self._ledger.clear()
            self._webhook_attempts.clear()
            self.dropped_webhooks.clear()
            self.requests.clear()
            self.responses.clear()
            self.plan_refusals = 0
            self.plan.clear()

    def count_request(self, endpoint: str) -> None:
        with self.lock:
            self.requests[endpoint] += 1

    def count_response(self, endpoint: str, status: int | str) -> None:
        with self.lock:
            self.responses[f"{endpoint} {status}"] += 1

    def add_project(
        self, project: Project, record: CreateRecord, *, key: str = "", limit: int = 0, reject: bool = False
    ) -> bool:
        """Store and charge a new project, unless the plan refuses it (reject mode, key full): then False,
        and nothing is stored or charged. One critical section, so two racing creates cannot both pass."""
        with self.lock:
            if not self.plan.admit(key, project.id, limit, reject):
                self.plan_refusals += 1
                return False
            self.projects[project.id] = project
            self._creates.append(record)
            self._ledger.append(LedgerEntry("debit", project.credits_charged, project.id, record.timestamp))
            return True

    # --- the plan's slots (plan.py), each move in the same critical section as its status change ---
    def start_rendering(self, project_id: str, limit: int) -> bool:
        """Take a plan slot and show `rendering`; False: it stays `queued` in its key's FIFO."""
        with self.lock:
            if not self.plan.request_start(project_id, limit):
                return False
            self._mark_rendering(project_id)
            return True

    def end_project(
        self, project_id: str, mutate: Callable[[Project], None], limit: int
    ) -> tuple[Project | None, list[str]]:
        """Apply a terminal change and free the project's slot; the ids returned took the freed slots
        and already show `rendering` (in FIFO order), so a GET never sees a slot free and a queue waiting."""
        with self.lock:
            project = self.update_project(project_id, mutate)
            if project is None:
                return None, []
            started = self.plan.finish(project_id, limit)
            for started_id in started:
                self._mark_rendering(started_id)
            return project, started

    def drain_plan(self, limit: int) -> list[str]:
        """After the limit changed: the waiting projects the new limit lets in, now `rendering`."""
        with self.lock:
            started = self.plan.drain(limit)
            for started_id in started:
                self._mark_rendering(started_id)
            return started

    def stalled_projects(self, limit: int) -> set[str]:
        """Queued projects that can never start: their key's slots are all held by stuck projects."""
        with self.lock:

            def stuck(project_id: str) -> bool:
                p = self.projects.get(project_id)
                return p is not None and p.fault == "never_complete"

            return self.plan.stalled(stuck, limit)

    def plan_stats(self) -> PlanStats:
        with self.lock:
            return self.plan.stats()

    def _mark_rendering(self, project_id: str) -> None:
        project = self.projects.get(project_id)
        if project is not None:
            project.status = "rendering"
            project.started_at = time.time()

    def set_create_outcome(self, project_id: str, outcome: str) -> None:
        with self.lock:
            for i, rec in enumerate(self._creates):
                if rec.id == project_id:
                    self._creates[i] = CreateRecord(**{**asdict(rec), "outcome": outcome})

    def refund(self, project: Project) -> None:
        """Render errors give the credits back (contract §1); the project then shows 0."""
        with self.lock:
            if project.credits_charged:
                self._ledger.append(LedgerEntry("refund", project.credits_charged, project.id, time.time()))
                project.credits_charged = 0

    def update_project(self, project_id: str, mutate: Callable[[Project], None]) -> Project | None:
        with self.lock:
            project = self.projects.get(project_id)
            if project is not None:
                mutate(project)
            return project

    def add_webhook_attempt(self, attempt: WebhookAttempt) -> None:
        with self.lock:
            self._webhook_attempts.append(attempt)

    # --- snapshots ----------------------------------------------------------------------
    @property
    def creates(self) -> list[CreateRecord]:
        with self.lock:
            return list(self._creates)

    @property
    def ledger(self) -> list[LedgerEntry]:
        with self.lock:
            return list(self._ledger)

    @property
    def webhook_attempts(self) -> list[WebhookAttempt]:
        with self.lock:
            return [copy.copy(a) for a in self._webhook_attempts]

    def project(self, project_id: str) -> Project | None:
        with self.lock:
            p = self.projects.get(project_id)
            return copy.copy(p) if p is not None else None

    def project_list(self) -> list[Project]:
        with self.lock:
            return [copy.copy(p) for p in self.projects.values()]

    def net_credits_spent(self) -> int:
        with self.lock:
            return sum(e.amount if e.kind == "debit" else -e.amount for e in self._ledger)

    def credit_balance(self, initial_credits: int) -> int:
        return initial_credits - self.net_credits_spent()

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.requests)

    def to_dict(self, initial_credits: int) -> dict[str, Any]:
        with self.lock:
            return {
                "creates": [asdict(c) for c in self._creates],
                "ledger": {
                    "entries": [asdict(e) for e in self._ledger],
                    "initial_credits": initial_credits,
                    "net_credits_spent": self.net_credits_spent(),
                    "balance": self.credit_balance(initial_credits),
                },
                "requests": dict(self.requests),
                "responses": dict(self.responses),
                "webhook_deliveries": [asdict(a) for a in self._webhook_attempts],
                "dropped_webhooks": list(self.dropped_webhooks),
                "projects": [p.summary() for p in self.projects.values()],
                "uploads": [
                    {
                        "file_path": u.file_path,
                        "type": u.type,
                        "uploaded": u.data is not None,
                        "length": len(u.data) if u.data is not None else None,
                    }
                    for u in self.uploads.values()
                ],
            }
