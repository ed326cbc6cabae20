"""The emulator's core, independent of HTTP: project lifecycle, signed URLs, credits, faults.

Lifecycle (contract §3): queued -> rendering -> complete | error | canceled. Transitions are
driven by one timer thread (not by polling requests), so a client that never polls still
gets webhooks, and timing is the same whether a job is polled or not. The slow part of a
render (the real fetch + Pillow) runs on a small thread pool.

With a plan limit (``plan_concurrency``, plan.py) a project leaves `queued` only when it gets a
rendering slot of its key; the render time counts from then, and `image.started` fires then.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from .config import CREDITS_PER_IMAGE, EmulatorConfig
from .faults import FaultDice
from .plan import PlanStats, key_id
from .render import RenderError, fetch, remove_background
from .state import CreateRecord, EmulatorState, IdFactory, Project, Upload, iso_ms
from .timers import Timers
from .webhooks import WebhookDispatcher

# What Magic Hour's docs say for the codes an injected render failure may carry (unknown codes get UNEXPECTED).
UNEXPECTED = "An unexpected error occurred. Please contact support@magichour.ai with the project id."
RENDER_ERROR_MESSAGES: dict[str, str] = {
    "unknown_error": UNEXPECTED,
    "invalid_image_file": "The image file contains invalid data. Please try a different file.",
    "invalid_file_format": "Unsupported file type. Please use a supported image format.",
    "file_too_large": "The file exceeds the size limit.",
    "invalid_parameters": "Invalid request parameters.",
    "content_policy_violation": "The image violates the content guidelines.",
}


class Engine:
    def __init__(self, config: EmulatorConfig) -> None:
        self._initial_config = config
        self._config = config
        self._config_lock = threading.Lock()
        self._dice = FaultDice(config.seed)
        self.state = EmulatorState()
        self.ids = IdFactory()
        self.base_url = ""
        # Per-process secret: download/upload URLs from another emulator run never validate.
        self._url_key = secrets.token_bytes(32)
        self._generation = 0  # bumped by reset() so callbacks for wiped projects become no-ops
        self.scheduler = Timers("emulator-scheduler")
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="emulator-render")
        self.webhooks = WebhookDispatcher(self.state, lambda: self.config, lambda: self._dice)

    # --- lifecycle of the engine itself -------------------------------------------------
    def start(self, base_url: str) -> None:
        self.base_url = base_url
        self.scheduler.start()
        self.webhooks.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.webhooks.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    @property
    def dice(self) -> FaultDice:
        return self._dice

    def configure(self, **changes: Any) -> EmulatorConfig:
        with self._config_lock:
            new = self._config.with_changes(**changes)
            if "seed" in changes:
                self._dice = FaultDice(new.seed)  # re-seeding restarts the deterministic streams
            self._config = new
            gen = self._generation
        # A raised (or removed) limit lets waiting projects in now, not at the next finish.
        for project_id in self.state.drain_plan(new.plan_concurrency):
            self._started(project_id, gen)
        return new

    def reset(self) -> None:
        """Forget everything and return to the startup configuration."""
        with self._config_lock:
            self._config = self._initial_config
            self._dice = FaultDice(self._initial_config.seed)
            self._generation += 1
        self.scheduler.clear()
        self.webhooks.clear()
        self.state.reset()

    def public_base(self) -> str:
        return (self.config.public_base_url or self.base_url).rstrip("/")

    # --- credits ------------------------------------------------------------------------
    def credit_balance(self) -> int:
        return self.state.credit_balance(self.config.initial_credits)

    # --- projects -----------------------------------------------------------------------
    def create(
        self, name: str | None, assets: dict[str, str], headers: dict[str, str], *, api_key: str
    ) -> Project | None:
        """The new, charged project; None when the plan refuses it (reject mode, key full): nothing made."""
        cfg = self.config
        now = time.time()
        project = Project(
            id=self.ids.new(),
            name=name if name is not None else f"Background Remover - {iso_ms(now)}",
            assets=dict(assets),
            created_at=now,
            credits_charged=CREDITS_PER_IMAGE,
            download_token=secrets.token_urlsafe(16),
        )
        record = CreateRecord(project.id, now, name, dict(assets), headers)
        admitted = self.state.add_project(
            project, record, key=key_id(api_key), limit=cfg.plan_concurrency, reject=cfg.plan_mode == "reject"
        )
        if not admitted:
            return None
        gen = self._generation
        self.scheduler.call_later(cfg.queue_seconds, lambda: self._begin(project.id, gen))
        return project

    def delete(self, project_id: str) -> bool:
        def mutate(p: Project) -> None:
            p.enabled = False
            p.output = None  # "Permanently delete the rendered image(s)"

        return self.state.update_project(project_id, mutate) is not None

    def _begin(self, project_id: str, gen: int) -> None:
        if gen != self._generation:
            return
        cfg, dice = self.config, self._dice
        project = self.state.project(project_id)
        if project is None or project.status != "queued":
            return
        if dice.roll("cancel", cfg.cancel_rate):
            # Canceled (e.g. from the web app): no webhook fires for it (contract §3/§5).
            self._end(project_id, gen, {"status": "canceled", "fault": "canceled"})
            return
        if self.state.start_rendering(project_id, cfg.plan_concurrency):
            self._started(project_id, gen)
        # Otherwise it waits, `queued`, until a project of its key ends (_end) or the limit rises.

    def _started(self, project_id: str, gen: int) -> None:
        """The project holds a plan slot and shows `rendering`: announce it, then render unless stuck."""
        cfg, dice = self.config, self._dice
        stuck = dice.roll("never_complete", cfg.never_complete_rate)
        if stuck:
            # It keeps its slot for good (see plan.py); quiescent() does not wait for it or its queue.
            self._set(project_id, fault="never_complete")
        self._emit("image.started", project_id)
        if not stuck:
            self._pool.submit(self._render, project_id, gen, time.monotonic())

    def _render(self, project_id: str, gen: int, started: float) -> None:
        cfg, dice = self.config, self._dice
        project = self.state.project(project_id)
        if project is None:
            return
        changes: dict[str, Any] = {}
        try:
            main = fetch(
                project.assets["image_file_path"],
                self.upload_bytes,
                timeout=cfg.fetch_timeout_seconds,
                max_bytes=cfg.max_input_bytes,
            )
            changes.update(input_sha256=main.sha256, input_length=len(main.data))
            background = None
            if project.assets.get("background_image_file_path"):
                bg = fetch(
                    project.assets["background_image_file_path"],
                    self.upload_bytes,
                    timeout=cfg.fetch_timeout_seconds,
                    max_bytes=cfg.max_input_bytes,
                )
                changes.update(background_sha256=bg.sha256, background_length=len(bg.data))
                background = bg.data
            if dice.roll("render_error", cfg.render_error_rate):
                changes["fault"] = "render_error"
                raise RenderError(cfg.render_error_code, RENDER_ERROR_MESSAGES.get(cfg.render_error_code, UNEXPECTED))
            output = remove_background(
                main.data, background, threshold=cfg.background_threshold, exif_transpose=cfg.exif_transpose
            )
            changes.update(output=output, output_sha256=hashlib.sha256(output).hexdigest(), status="complete")
        except RenderError as exc:
            changes.update(status="error", error={"code": exc.code, "message": exc.message})
        except Exception as exc:  # a bug in the emulator must still end the job, visibly
            changes.update(status="error", error={"code": "unknown_error", "message": f"emulator bug: {exc!r}"})
        remaining = cfg.render_seconds - (time.monotonic() - started)
        self.scheduler.call_later(remaining, lambda: self._finish(project_id, gen, changes))

    def _finish(self, project_id: str, gen: int, changes: dict[str, Any]) -> None:
        if gen != self._generation:
            return
        self._end(project_id, gen, changes)

    def _end(self, project_id: str, gen: int, changes: dict[str, Any]) -> None:
        """A terminal change; its webhook, then the projects that take the freed plan slot start."""
        changes["finished_at"] = time.time()

        def mutate(p: Project) -> None:
            for k, v in changes.items():
                setattr(p, k, v)
            if p.status == "error":
                # Same lock as the status change: no GET can see "error" with the credits not yet refunded.
                self.state.refund(p)

        project, started = self.state.end_project(project_id, mutate, self.config.plan_concurrency)
        if project is None:
            return
        if project.status != "canceled":  # no webhook fires for canceled (contract §5)
            self._emit("image.errored" if project.status == "error" else "image.completed", project_id)
        for started_id in started:
            self._started(started_id, gen)

    def _set(self, project_id: str, **changes: Any) -> None:
        def mutate(p: Project) -> None:
            for k, v in changes.items():
                setattr(p, k, v)

        self.state.update_project(project_id, mutate)

    def _emit(self, event_type: str, project_id: str) -> None:
        payload = self.payload(project_id)
        if payload is not None:
            self.webhooks.emit(event_type, project_id, payload)

    # --- the GET body -------------------------------------------------------------------
    def payload(self, project_id: str) -> dict[str, Any] | None:
        """The GET /v1/image-projects/{id} object, with freshly signed download URLs."""
        p = self.state.project(project_id)
        if p is None:
            return None
        downloads = []
        if p.status == "complete" and p.enabled and p.output is not None:
            downloads = [self.sign_download(p.download_token)]
        return {
            "id": p.id,
            "name": p.name,
            "status": p.status,
            "image_count": 1,
            "type": "BACKGROUND_REMOVER",
            "created_at": iso_ms(p.created_at),
            "enabled": p.enabled,
            "credits_charged": p.credits_charged,
            "total_frame_cost": p.credits_charged,
            "downloads": downloads,
            "error": dict(p.error) if p.error else None,
        }

    # --- signed URLs --------------------------------------------------------------------
    def _mac(self, *parts: str) -> str:
        return hmac.new(self._url_key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()

    def sign_download(self, token: str) -> dict[str, str]:
        now = time.time()
        if self._dice.roll("expired_download", self.config.expired_download_rate):
            expires = int(now) - 1  # already expired when handed out
        else:
            expires = int(now) + self.config.download_ttl_seconds
        sig = self._mac("download", token, str(expires))
        url = f"{self.public_base()}/_downloads/{token}/output.png?expires={expires}&auth-token={sig}"
        return {"url": url, "expires_at": iso_ms(expires)}

    def download(self, token: str, expires: str, sig: str) -> tuple[int, bytes]:
        """(status, body) for a download request; 403 mirrors S3's answer to a bad/expired URL."""
        if not hmac.compare_digest(self._mac("download", token, expires), sig):
            return 403, s3_error("SignatureDoesNotMatch", "The request signature does not match")
        if not expires.isdigit() or int(expires) < time.time():
            return 403, s3_error("AccessDenied", "Request has expired")
        with self.state.lock:
            project = next((p for p in self.state.projects.values() if p.download_token == token), None)
            output = project.output if project is not None and project.enabled else None
        if output is None:
            return 404, s3_error("NoSuchKey", "The specified key does not exist.")
        if self._dice.roll("garbage_download", self.config.garbage_download_rate):
            return 200, b"<html><body>Service temporarily unavailable</body></html>"
        return 200, output

    # --- uploads (contract §4) ----------------------------------------------------------
    def new_upload(self, type_: str, extension: str) -> dict[str, str]:
        now = time.time()
        folder = self.ids.new()
        file_path = f"api-assets/{folder}/{int(now * 1000)}.{extension}"
        expires = int(now) + self.config.upload_ttl_seconds
        token = self._mac("upload", file_path, str(expires))
        with self.state.lock:
            self.state.uploads[file_path] = Upload(file_path, extension, type_, token, now)
        url = f"{self.public_base()}/_uploads/{quote(file_path)}?expires={expires}&auth-value={token}"
        return {"upload_url": url, "expires_at": iso_ms(expires), "file_path": file_path}

    def put_upload(self, file_path: str, expires: str, sig: str, data: bytes) -> int:
        if not hmac.compare_digest(self._mac("upload", file_path, expires), sig):
            return 403
        if not expires.isdigit() or int(expires) < time.time():
            return 403
        with self.state.lock:
            upload = self.state.uploads.get(file_path)
            if upload is None:
                return 404
            self.state.uploads[file_path] = Upload(
                upload.file_path, upload.extension, upload.type, upload.token, upload.created_at, data
            )
        return 200

    def upload_bytes(self, file_path: str) -> bytes | None:
        with self.state.lock:
            upload = self.state.uploads.get(file_path)
            return upload.data if upload is not None else None

    # --- waiting helpers ----------------------------------------------------------------
    def quiescent(self) -> bool:
        """No project can still move and no webhook is pending.

        Stuck (never_complete) projects are excluded, and so are the projects queued behind a key
        whose every slot a stuck project holds: they can never start, and waiting for them would
        hang every test and soak that runs the never_complete fault with a plan limit.
        """
        with self.state.lock:
            stalled = self.state.stalled_projects(self.config.plan_concurrency)
            busy = any(
                p.status in ("queued", "rendering") and p.fault != "never_complete" and p.id not in stalled
                for p in self.state.projects.values()
            )
        return not busy and self.scheduler.idle() and self.webhooks.idle()

    def plan_stats(self) -> PlanStats:
        return self.state.plan_stats()


def s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    ).encode()
