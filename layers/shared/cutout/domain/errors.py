"""Every exception the domain raises, in one place, named for what it means to the caller.

Two families matter for money and for the queues:

* ``RetryLater`` — the message goes back to its queue (nothing was spent, or the outcome is still being
  resolved). ``BudgetExhausted`` is one: the upload is parked until the budget allows it.
* ``MagicHourError`` — typed by what a failed call means for money (created? maybe? provably not?).

``InvalidEnvironment`` (a function's environment variables) and ``SecretUnavailable`` are configuration problems of
Cutout's own deployment; ``AccountRefused`` is Magic Hour refusing the account (401/402/403).
"""

from __future__ import annotations


class RetryLater(Exception):
    """Put the message back on its queue: nothing was spent, or what happened is still being resolved."""


class BudgetExhausted(RetryLater):
    """Today's credit budget is spent: the upload waits (parked in its queue) instead of being created."""


class InvalidBackground(ValueError):
    """The background image named for this upload cannot be used."""


class InvalidOutput(Exception):
    """Magic Hour's result cannot become our cutout (not a PNG, too large, no download)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class WebhookRejected(Exception):
    """A webhook delivery that is not authentic, fresh or small enough; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ----- Magic Hour: typed by what the failure means for money -------------------------------------------------
class MagicHourError(Exception):
    """Base class. `retryable` tells the queue consumer whether the message should come back."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, code: str = "magic_hour_error") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotCreated(MagicHourError):
    """The create provably did not happen (unreachable, throttled, 502/503). Safe to try again later."""

    retryable = True


class AccountRefused(MagicHourError):
    """401/402/403: bad key, no credits, plan limits. Not the upload's fault: retry via the queue and alarm."""

    retryable = True


class InputRejected(MagicHourError):
    """400/422: Magic Hour refused this input. Terminal for the job; no credits were spent."""


class AmbiguousCreate(MagicHourError):
    """The create may or may not have happened (timeout after send, reset, 5xx, malformed 200)."""


class ProjectNotFound(MagicHourError):
    """GET/DELETE 404."""


class TransientError(MagicHourError):
    """A read call failed in a way worth retrying later (network, 429, 5xx)."""

    retryable = True


class MalformedResponse(MagicHourError):
    """A 2xx whose body does not match the contract."""


class OutOfTime(RetryLater):
    """Too little of the invocation is left to start one more Magic Hour call (time_budget.py): nothing was taken
    for the record; it is deferred (sqs_batch.py) for another invocation."""


class InvalidEnvironment(RuntimeError):
    """A required setting (environment variable) is missing or malformed: the function cannot do anything useful."""


class SecretUnavailable(RuntimeError):
    """The secret id is unset or the secret cannot be read: a configuration problem, retried via the queue."""


class UrlExpired(Exception):
    """The download URL no longer works (expired signature, gone): a fresh GET of the project gives new ones."""
