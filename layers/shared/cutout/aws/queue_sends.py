"""The SQS messages Cutout sends itself: the first and next status checks, completions, parked uploads, and the
wake-ups that start waiting jobs."""

from __future__ import annotations

from cutout.aws import aws_clients
from cutout.domain.messages import CompletionMessage, DispatchMessage, PollMessage
from cutout.domain.models import Clock, iso, utc_now
from cutout.runtime.config import Settings

SQS_MAX_DELAY_SECONDS = 900


class Dispatcher:
    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock

    def first_check(self, job_id: str, project_id: str, *, webhooks_arrive: bool = False) -> None:
        """The first bounded status check of a job (the submit after a create, the finalizer after an adoption).

        `webhooks_arrive`: authentic webhooks reach this stack (admission's `webhook#seen`), so this check is the
        fallback for a missed delivery: it comes one first delay later (twice Magic Hour's p50 by default), when
        the webhook has usually completed the job (the check then reads the job and stops). At the polling-only
        time it raced the webhook's completion: a second completion message and finalize for one image in the
        bench's webhook runs."""
        if not self.settings.poll_queue_url:
            return
        message = PollMessage(job_id, project_id, 1, iso(self.clock()))
        delay = self.settings.poll_first_delay_seconds * (2 if webhooks_arrive else 1)
        self._send(self.settings.poll_queue_url, message.to_json(), delay)

    def next_check(self, message: PollMessage, delay_seconds: int) -> None:
        self._send(self.settings.poll_queue_url, message.to_json(), delay_seconds)

    def completion(self, message: CompletionMessage) -> None:
        self._send(self.settings.completion_queue_url, message.to_json())

    def wake(self, reason: str, delay_seconds: int = 0, suspect: str | None = None) -> None:
        """Ask the submit function to start the oldest waiting jobs (a slot was freed, or will be by then; with
        `suspect`, the job whose slot may be freed by then)."""
        if self.settings.ingest_queue_url:
            self._send(self.settings.ingest_queue_url, DispatchMessage(reason, suspect).to_json(), delay_seconds)

    def park(self, body: str, delay_seconds: int) -> None:
        """Send an ingest message back to its queue, delayed (a fresh receive count)."""
        self._send(self.settings.ingest_queue_url, body, delay_seconds)

    @staticmethod
    def _send(queue_url: str, body: str, delay_seconds: int = 0) -> None:
        aws_clients.sqs().send_message(
            QueueUrl=queue_url, MessageBody=body, DelaySeconds=min(delay_seconds, SQS_MAX_DELAY_SECONDS)
        )
