"""Fixtures for contract tests: the emulator, a loopback file server, and an SDK client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from magic_hour import Client

from cutout_dev.emulator import EmulatorConfig, EmulatorServer
from cutout_dev.emulator.testing import StaticFileServer

API_KEY = "contract-test-key"


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_key=API_KEY, queue_seconds=0.02, render_seconds=0.05)) as server:
        yield server


@pytest.fixture
def file_server() -> Iterator[StaticFileServer]:
    with StaticFileServer() as server:
        yield server


@pytest.fixture
def client(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Client:
    # check_result() sleeps this long between GETs (default 0.5 s); keep the suite fast.
    monkeypatch.setenv("MAGIC_HOUR_POLL_INTERVAL", "0.02")
    return Client(token=API_KEY, base_url=emulator.base_url)
