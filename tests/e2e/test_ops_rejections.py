"""Rejections say whose fault they are, on the local stack (template.yaml in moto, the real handlers, the emulator).

A stack deployed with ``DefaultBackgroundKey=backgrounds/white.png`` and no such object rejects every upload
(``background_invalid``): the configuration's fault, not the file's. ``cutout doctor`` names the missing object;
once it is added, ``cutout retry`` (or ``cutout backfill``) takes the same uploads up again, their history kept.
A rejection of the file itself stays final.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cutout_dev import cli, local_cli
from cutout_dev.local_stack import LocalStack, LocalStackConfig

BACKGROUND = "backgrounds/white.png"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = LocalStackConfig(
        function_log=tmp_path_factory.mktemp("rejections") / "functions.log",  # stdout is the CLI's
        real_magic_hour=False,
        emulator={"queue_seconds": 0.05, "render_seconds": 0.2},
        schedule_interval_seconds=0,
        parameters={"DefaultBackgroundKey": BACKGROUND},
    )
    with LocalStack(config) as running:
        yield running


@pytest.fixture
def local_state(stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "endpoints.json"
    monkeypatch.setenv("CUTOUT_LOCAL_STACK_FILE", str(state))
    monkeypatch.chdir(tmp_path)  # backfill's checkpoint goes to ./.cutout
    local_cli.write_state(stack)
    return state


@pytest.fixture
def no_background(stack: LocalStack) -> Iterator[None]:
    """The default background missing, as a fresh deployment has it; removed again afterwards."""
    s3 = stack.client("s3")
    s3.delete_object(Bucket=stack.endpoints.bucket, Key=BACKGROUND)
    yield
    s3.delete_object(Bucket=stack.endpoints.bucket, Key=BACKGROUND)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = cli.main([*argv, "--json"])
    out = "\n".join(line for line in capsys.readouterr().out.splitlines() if not line.startswith('{"'))
    return code, json.loads(out) if out.strip() else None


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (shade, 90, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _upload(stack: LocalStack, capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, shade: int) -> str:
    path = tmp_path / name
    path.write_bytes(_png(shade))
    code, doc = run(capsys, "upload", str(path), "--prefix", "shop/")
    assert code == 0
    (uploaded,) = doc["uploaded"]
    return str(uploaded["job_id"])


def _status(stack: LocalStack, job_id: str, wanted: str) -> dict[str, Any]:
    stack.emulator.wait_until(lambda: (stack.job(job_id) or {}).get("status") == wanted, timeout=60)
    job = stack.job(job_id)
    assert job is not None
    return job


def _add_background(stack: LocalStack) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (255, 255, 255)).save(buffer, "PNG")
    stack.client("s3").put_object(
        Bucket=stack.endpoints.bucket, Key=BACKGROUND, Body=buffer.getvalue(), ContentType="image/png"
    )


def _check(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in doc["checks"] if c["name"] == name]
    return dict(found)


def test_a_missing_default_background_is_named_by_doctor_and_its_rejections_complete_after_a_retry(
    stack: LocalStack, local_state: Path, no_background: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a stack whose default background does not exist: an upload is rejected for it
    job_id = _upload(stack, capsys, tmp_path, "mug.png", 30)
    rejected = _status(stack, job_id, "rejected")
    assert rejected["error_code"] == "background_invalid"
    assert BACKGROUND in rejected["error_message"]
    _, job = run(capsys, "job", job_id)
    assert job["fix"].startswith("caused by the configuration, not the file")

    # when the operator asks the doctor, it names the missing object and how to fix it (exit 2: a person is needed)
    code, doc = run(capsys, "doctor")
    assert code == 2
    finding = _check(doc, "default-background")
    assert finding["status"] == "fail"
    assert f"s3://{stack.endpoints.bucket}/{BACKGROUND} does not exist" in finding["detail"]
    assert "cutout retry --status rejected --code background_invalid" in finding["fix"]

    # and once the background is added the doctor is content with it
    _add_background(stack)
    _, doc = run(capsys, "doctor")
    assert _check(doc, "default-background")["status"] == "ok"

    # then `cutout retry` takes the same upload up again, and it completes with its first attempt in its history
    code, retried = run(capsys, "retry", job_id, "--yes")
    assert (code, retried["retried"], retried["refused"]) == (0, [job_id], {})
    done = _status(stack, job_id, "complete")
    assert done["created_at"] == rejected["created_at"]
    assert done["attempts"] == 2
    (first,) = done["history"]
    assert (first["status"], first["error_code"]) == ("rejected", "background_invalid")
    assert first["error_message"] == rejected["error_message"]
    assert done["background_key"] == BACKGROUND


def test_backfill_and_retry_by_status_take_up_configuration_rejections_but_not_a_file_rejection(
    stack: LocalStack, local_state: Path, no_background: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given two uploads rejected for the missing background, and one rejected for its own bytes
    by_backfill = _upload(stack, capsys, tmp_path, "lamp.png", 60)
    by_status = _upload(stack, capsys, tmp_path, "vase.png", 90)
    text_file = tmp_path / "notes.png"
    text_file.write_bytes(b"plain text, not an image")
    code, doc = run(capsys, "upload", str(text_file), "--prefix", "shop/", "--force")
    assert code == 0
    not_an_image = doc["uploaded"][0]["job_id"]
    for job_id in (by_backfill, by_status, not_an_image):
        _status(stack, job_id, "rejected")
    assert stack.job(not_an_image)["error_code"] == "not_an_image"  # type: ignore[index]
    _add_background(stack)

    # when backfill lists the prefix, it counts the configuration rejections to retry (and not the file's)
    code, plan = run(capsys, "backfill", "--prefix", "shop/lamp", "--dry-run")
    assert code == 0
    assert (plan["images"], plan["retried_rejections"], plan["already_jobs"]) == (1, 1, 0)
    code, sent = run(capsys, "backfill", "--prefix", "shop/lamp", "--yes")
    assert (code, sent["enqueued"]) == (0, 1)
    assert _status(stack, by_backfill, "complete")["history"][0]["error_code"] == "background_invalid"

    # and retry --status rejected selects the configuration's rejections only: the text file stays rejected
    code, retried = run(capsys, "retry", "--status", "rejected", "--prefix", "shop/", "--yes")
    assert code == 0
    assert retried["retried"] == [by_status]
    assert _status(stack, by_status, "complete")["attempts"] == 2
    assert stack.job(not_an_image)["status"] == "rejected"  # type: ignore[index]
    code, refused = run(capsys, "retry", not_an_image, "--yes")
    assert (code, refused["refused"]) == (1, {not_an_image: "rejected"})
