"""Receiving Magic Hour's webhook: authenticate, refuse replays, apply `image.started` in place, and hand every
other event to the finalizer through the completion queue (so the answer stays well inside Magic Hour's 10 s).

Authentication is the HMAC signature (webhook_auth), checked before anything else. A signed delivery is
remembered for longer than the timestamp tolerance, so a replay inside the window is refused; if the event
cannot be enqueued the mark is dropped again, letting Magic Hour's retry through.
"""

# No `from __future__ import annotations` in this module: a NamedTuple turns string annotations into ForwardRefs,
# compiling each one (~12 us a field at cold start; ~0.1 ms here). Forward references are quoted.
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from cutout.aws import secrets
from cutout.domain.errors import MalformedResponse, WebhookRejected
from cutout.domain.messages import CompletionMessage
from cutout.domain.models import JobStatus, job_id_from_project_name
from cutout.domain.outcomes import WebhookOutcome
from cutout.magic_hour.client import Project, parse_project
from cutout.magic_hour.webhook_auth import TOLERANCE_SECONDS, verify
from cutout.runtime.observability import bind_job, count, logger
from cutout.use_cases.collaborators import Collaborators

REPLAY_WINDOW = timedelta(seconds=2 * TOLERANCE_SECONDS)  # > the timestamp tolerance: a replay inside it is caught
# How often one instance notes that webhooks arrive (`webhook#seen`, read by the submit with its slots: it then
# schedules the first status check after the webhook's usual arrival). Once a minute an instance: no hot item.
SEEN_NOTE_INTERVAL = timedelta(seconds=60)
SEEN_RETENTION = timedelta(days=1)
SEEN_KEY = "webhook#seen"  # the admission's WEBHOOKS_SEEN_KEY (admission/slots.py; not imported: cold start)
EVENT_TYPES = frozenset({"image.started", "image.completed", "image.errored"})


# NamedTuples rather than frozen dataclasses: ~0.2 ms each at import instead of ~0.65 (cold start; see job.py).
class Delivery(NamedTuple):
    method: str
    headers: Mapping[str, str]
    body: bytes


class Answer(NamedTuple):
    status: int
    outcome: WebhookOutcome
    body: dict[str, Any]


class WebhookReceiver:
    def __init__(self, common: Collaborators) -> None:
        self.settings, self.clock, self.store = common.settings, common.clock, common.store
        self.counters, self.dispatch = common.counters, common.dispatch
        self._seen_noted: datetime | None = None

    def receive(self, delivery: Delivery) -> Answer:
        if delivery.method != "POST":
            return Answer(405, WebhookOutcome.REJECTED, {"error": "method not allowed"})
        try:
            # The secret is read (a Secrets Manager call when not cached) only for a delivery that could be
            # authentic: unsigned, stale or oversized ones are refused without any AWS call.
            signature = verify(
                dict(delivery.headers), delivery.body, lambda: secrets.webhook_secret(self.settings.webhook_secret_id)
            )
        except WebhookRejected as exc:
            count("WebhookRejected")
            logger.warning("webhook rejected", extra={"reason": exc.reason, "status": exc.status})
            return Answer(exc.status, WebhookOutcome.REJECTED, {"error": exc.reason})
        try:
            doc = json.loads(delivery.body)
            event_type = doc["type"]
            # The schema names it `payload`; one old example says `object` (Magic Hour's webhook reference).
            project = parse_project(doc.get("payload", doc.get("object")))
        except (ValueError, KeyError, TypeError, MalformedResponse) as exc:
            count("WebhookMalformed")
            logger.warning("webhook body malformed", extra={"reason": str(exc)[:200]})
            return Answer(400, WebhookOutcome.MALFORMED, {"error": "malformed body"})
        return self._route(signature, event_type, project)

    def _route(self, signature: str, event_type: str, project: Project) -> Answer:
        job_id = job_id_from_project_name(project.name)
        bind_job(project_id=project.id, job_id=job_id)
        if event_type in EVENT_TYPES and job_id is not None:
            self._note_arrival()
        if event_type not in EVENT_TYPES or job_id is None:
            # Webhooks are account-wide: other tools' projects and other event families are not ours to handle.
            # 202 like every authentic delivery (Magic Hour takes any 2xx as delivered): one answer for "signed
            # right and taken", whatever Cutout then does with it, is what `cutout doctor` checks the URL with.
            count("WebhookIgnored")
            logger.info("webhook not for a cutout job; ignored", extra={"event_type": event_type})
            return Answer(202, WebhookOutcome.IGNORED, {"ignored": True})
        if event_type == "image.started" and self.store.mark_progress(
            job_id, JobStatus.RENDERING, project.id, require_project=True
        ):
            # The usual case: one forward-only conditional update in place, no trip through the queue. When it does
            # not apply (the job is not recorded yet, or is an ambiguous create this project can resolve, or is
            # already further on), the event goes to the finalizer like the others, which knows what to do.
            count("WebhookStarted")
            return Answer(202, WebhookOutcome.STARTED, {"accepted": True})
        if not self._first_delivery(signature):
            count("WebhookReplayed")
            logger.warning("webhook replay rejected")
            return Answer(409, WebhookOutcome.REPLAYED, {"error": "replayed delivery"})
        message = CompletionMessage(project=project.raw, source="webhook", event_type=event_type, job_id=job_id)
        try:
            self.dispatch.completion(message)
        except Exception:
            self.counters.delete(_replay_mark(signature))  # let Magic Hour's retry through
            logger.exception("could not enqueue the webhook")
            return Answer(500, WebhookOutcome.ENQUEUE_FAILED, {"error": "try again"})
        count("WebhookAccepted")
        return Answer(202, WebhookOutcome.ACCEPTED, {"accepted": True})

    def _note_arrival(self) -> None:
        """Note, at most once per SEEN_NOTE_INTERVAL in this instance, that authentic webhooks reach this stack."""
        now = self.clock()
        if self._seen_noted is not None and now - self._seen_noted < SEEN_NOTE_INTERVAL:
            return
        self._seen_noted = now
        try:
            self.counters.stamp(SEEN_KEY, now, now + SEEN_RETENTION)
        except Exception:
            # A hint: without it the first status check comes at the polling-only time (one check more).
            count("WebhookSeenNoteFailed")
            logger.warning("could not note that webhooks arrive", exc_info=True)

    def _first_delivery(self, signature: str) -> bool:
        """True the first time this signed delivery is seen; False for a replay."""
        return self.counters.add(_replay_mark(signature), 1, 1, self.clock() + REPLAY_WINDOW)


def _replay_mark(signature: str) -> str:
    return f"webhook#{signature}"
