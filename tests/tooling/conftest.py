"""Fixtures the dev tooling's tests share: for the emulator's, a file server for inputs and a receiver for signed
webhooks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cutout_dev.emulator.testing import StaticFileServer, WebhookReceiver


@pytest.fixture
def files() -> Iterator[StaticFileServer]:
    with StaticFileServer() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server
