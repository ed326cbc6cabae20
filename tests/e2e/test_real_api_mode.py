"""Real-API mode of the local stack, pointed at the emulator so the test never reaches the internet."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cutout_dev.emulator import EmulatorConfig, EmulatorServer
from cutout_dev.local_stack import LocalStack, LocalStackConfig

REAL_MODE_KEY = "real-mode-test-key"


@pytest.fixture
def stand_in_magic_hour(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    # The stand-in cannot reach the stack's webhook endpoint, exactly like the real service.
    server = EmulatorServer(EmulatorConfig(api_key=REAL_MODE_KEY, queue_seconds=0.05, render_seconds=0.2))
    base_url = server.start()
    monkeypatch.setenv("MAGIC_HOUR_API_KEY", REAL_MODE_KEY)
    monkeypatch.setenv("MAGIC_HOUR_BASE_URL", base_url)
    yield server
    server.stop()


def test_real_mode_uploads_assets_and_completes_by_polling(
    stand_in_magic_hour: EmulatorServer, samples: dict[str, Path]
) -> None:
    # given: the local stack in real-API mode, asked for explicitly (key from MAGIC_HOUR_API_KEY, asset transfer
    # "upload", no webhooks)
    config = LocalStackConfig(real_magic_hour=True, schedule_interval_seconds=0)
    with LocalStack(config) as stack:
        assert stack.uses_real_magic_hour
        assert stack.emulator is None
        source = samples["red flower.png"]

        # when
        uploaded = stack.upload(source)
        (job,) = stack.wait_for_terminal([uploaded], timeout=60).values()

    # then: Magic Hour was handed the object's exact bytes through upload-urls + PUT, and polling finished it
    assert job["status"] == "complete"
    (create,) = stand_in_magic_hour.state.creates
    assert create.assets["image_file_path"].startswith("api-assets/")
    project = stand_in_magic_hour.project(job["project_id"])
    assert project is not None
    assert project.input_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert stand_in_magic_hour.state.webhook_attempts == []
