"""The local stack's faster SQS retention check gives moto's answer (cutout_dev.local_stack.aws._retained)."""

from __future__ import annotations

from types import SimpleNamespace

from moto.core.utils import unix_time

from cutout_dev.local_stack.aws import _retained


class _Backend:
    def __init__(self, retention: int) -> None:
        self.queue = SimpleNamespace(message_retention_period=retention)

    def get_queue(self, name: str) -> SimpleNamespace:
        assert name == "q"
        return self.queue


def test_a_message_inside_the_retention_period_is_kept() -> None:
    # Given a queue keeping messages an hour and a message sent half an hour ago (far from the edge: the check
    # reads the clock again, and a loaded machine may pass a second between)
    message = SimpleNamespace(sent_timestamp=(unix_time() - 1800) * 1000)
    # Then it may still be received
    assert _retained(_Backend(3600), "q", message)


def test_a_message_past_the_retention_period_is_dropped() -> None:
    # Given a queue keeping messages an hour and a message sent an hour and a half ago
    message = SimpleNamespace(sent_timestamp=(unix_time() - 5400) * 1000)
    # Then it is past retention, as moto's own check says
    assert not _retained(_Backend(3600), "q", message)
