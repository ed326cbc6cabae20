"""Signed webhook delivery (contract §5) from a background thread, with bounded retries.

Signature: hex HMAC-SHA256 over f"{timestamp}.{raw_body}". Each attempt is re-signed with a
fresh timestamp (a receiver enforcing a 5-minute window must still accept late retries).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from .config import EmulatorConfig
from .faults import FaultDice
from .state import EmulatorState, WebhookAttempt
from .timers import Timers

SIGNATURE_HEADER = "magic-hour-event-signature"
TIMESTAMP_HEADER = "magic-hour-event-timestamp"


def sign(secret: str, timestamp: str, raw_body: str | bytes) -> str:
    body = raw_body.decode() if isinstance(raw_body, bytes) else raw_body
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, raw_body: str | bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, raw_body), signature)


@dataclass
class _Delivery:
    delivery_id: str
    event_type: str
    project_id: str
    url: str
    secret: str
    body: str
    attempt: int = 1
    duplicate: bool = False


class WebhookDispatcher:
    """One timer thread: attempts go out one at a time in due order, retries are rescheduled on it."""

    def __init__(
        self, state: EmulatorState, get_config: Callable[[], EmulatorConfig], dice: Callable[[], FaultDice]
    ) -> None:
        self._state = state
        self._config = get_config
        self._dice = dice
        self._timers = Timers("emulator-webhooks")
        self._session = requests.Session()

    def start(self) -> None:
        self._timers.start()

    def stop(self) -> None:
        self._timers.stop()
        self._session.close()

    def clear(self) -> None:
        self._timers.clear()

    def idle(self) -> bool:
        """No delivery pending (retries included) and none mid-attempt."""
        return self._timers.idle()

    def emit(self, event_type: str, project_id: str, payload: dict[str, Any]) -> None:
        cfg = self._config()
        if not cfg.webhook_url or event_type not in cfg.webhook_events:
            return
        body = json.dumps({"type": event_type, "payload": payload}, separators=(",", ":"))
        delivery_id = f"{project_id}:{event_type}"
        dice = self._dice()
        if dice.roll("drop_webhook", cfg.drop_webhook_rate):
            with self._state.lock:
                self._state.dropped_webhooks.append({"delivery_id": delivery_id, "event_type": event_type})
            return
        copies = 2 if dice.roll("duplicate_webhook", cfg.duplicate_webhook_rate) else 1
        for i in range(copies):
            self._push(
                0.0,
                _Delivery(
                    delivery_id,
                    event_type,
                    project_id,
                    cfg.webhook_url,
                    cfg.webhook_secret,
                    body,
                    duplicate=i > 0,
                ),
            )

    def _push(self, delay: float, delivery: _Delivery) -> None:
        self._timers.call_later(delay, lambda: self._attempt(delivery))

    def _attempt(self, d: _Delivery) -> None:
        cfg = self._config()
        ts = str(int(time.time()))
        signature = sign(d.secret, ts, d.body)
        record = WebhookAttempt(
            delivery_id=d.delivery_id,
            event_type=d.event_type,
            project_id=d.project_id,
            attempt=d.attempt,
            timestamp=time.time(),
            url=d.url,
            duplicate=d.duplicate,
            body=d.body,
            signature=signature,
            signed_timestamp=ts,
        )
        try:
            resp = self._session.post(
                d.url,
                data=d.body.encode(),
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: signature,
                    TIMESTAMP_HEADER: ts,
                    "User-Agent": "magic-hour-webhooks-emulator",
                },
                timeout=cfg.webhook_timeout_seconds,
                allow_redirects=False,
            )
            record.status_code = resp.status_code
            ok = 200 <= resp.status_code < 300
        except requests.RequestException as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            ok = False
        self._state.add_webhook_attempt(record)
        if not ok and d.attempt < cfg.webhook_max_attempts:
            # Exponential backoff as documented (1 s, 2 s, 4 s...), scaled by the configured base.
            delay = cfg.webhook_base_delay_seconds * (2 ** (d.attempt - 1))
            d.attempt += 1
            self._push(delay, d)
