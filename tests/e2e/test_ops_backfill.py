"""`cutout backfill` and `cutout retry` against the local stack: template.yaml's resources in moto, the real
handlers, the Magic Hour emulator (its create log is the bill).

Objects "already in the bucket" are written while the bucket's EventBridge notifications are off — the state of
a bucket before Cutout watched it — so only the backfill can bring them to the pipeline.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cutout_dev import cli, local_cli
from cutout_dev.local_stack import LocalStack
from cutout_dev.local_stack.aws import REGION
from cutout_dev.local_stack.stack import job_id_for
from cutout_dev.ops.backfill import Options, Pipeline, run_backfill
from cutout_dev.ops.retry import run_retry, select
from cutout_dev.preexisting import unwatched

MakeStack = Callable[..., LocalStack]

HOSTILE = [
    "hostile/sp ace.png",
    "hostile/plus+sign.png",
    "hostile/100% off.png",
    "hostile/50%25 literal.png",
    "hostile/ünïcødé 写真.png",
    "hostile/(paren) [x] copy.png",
    "hostile/a+b c%2Bd (1).png",
]


def _png(i: int) -> bytes:
    """A tiny distinct image (distinct bytes, distinct ETag): a subject on a plain background."""
    img = Image.new("RGB", (8, 8), (255, 255, 255))
    img.putpixel((i % 8, (i // 8) % 8), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    img.putpixel((4, 4), (i % 256, 0, 0))
    img.putpixel((3, 3), (0, (i // 256) % 256, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _pipeline(stack: LocalStack, **overrides: Any) -> Pipeline:
    ep = stack.endpoints
    return Pipeline(
        s3=stack.client("s3"),
        dynamodb=stack.client("dynamodb"),
        sqs=stack.client("sqs"),
        table=ep.table,
        ingest_queue_url=ep.queues["IngestQueue"],
        bucket=ep.bucket,
        input_prefix=ep.input_prefix,
        output_prefix=ep.output_prefix,
        output_bucket=ep.output_bucket,
        region=REGION,
        **overrides,
    )


def _put_unwatched(stack: LocalStack, objects: dict[str, bytes]) -> dict[str, str]:
    """Write objects without any event; returns key → job id (what the submit will derive)."""
    s3 = stack.client("s3")
    ids = {}
    with unwatched(s3, stack.endpoints.bucket):
        for key, body in objects.items():
            etag = s3.put_object(Bucket=stack.endpoints.bucket, Key=key, Body=body)["ETag"]
            ids[key] = job_id_for(stack.endpoints.bucket, key, etag)
    return ids


def _creates(stack: LocalStack) -> Counter[str]:
    return Counter(str(c.name) for c in stack.emulator.state.creates)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """Run the CLI with --json; (exit status, parsed stdout without the functions' one-line EMF/log JSON)."""
    code = cli.main([*argv, "--json"])
    out = "\n".join(line for line in capsys.readouterr().out.splitlines() if not line.startswith('{"'))
    return code, json.loads(out) if out.strip() else None


@pytest.fixture
def at_the_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[LocalStack], None]:
    """An operator's shell: in a scratch directory (the checkpoint's .cutout/), the local stack's state file."""
    monkeypatch.chdir(tmp_path)

    def point_at(stack: LocalStack) -> None:
        monkeypatch.setenv("CUTOUT_LOCAL_STACK_FILE", str(tmp_path / "endpoints.json"))
        local_cli.write_state(stack)

    return point_at


def _text(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, "\n".join(line for line in capsys.readouterr().out.splitlines() if not line.startswith('{"'))


def _never(question: str) -> bool:
    raise AssertionError(f"asked {question!r} although --yes was given")


def test_backfill_creates_once_per_new_image_skips_done_ones_and_resumes_after_an_interrupt(
    make_stack: MakeStack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    at_the_terminal: Callable[[LocalStack], None],
) -> None:
    # More concurrent submits, and more jobs at Magic Hour at once (MaxJobsInFlight), than the template's 3: the jobs
    # wait on the emulator, not on the CPU. A completion that found its job not yet recorded comes back in 3 s
    # instead of the template's minutes.
    stack = make_stack(
        webhooks=True,
        parameters={"MaximumConcurrency": "10", "MaxJobsInFlight": "10"},
        visibility_timeout_seconds={"CompletionQueue": 3},
    )
    ep = stack.endpoints
    inp = ep.input_prefix

    # given images that went through the pipeline already (uploaded while it watched)
    done = [stack.upload(_png(10_000 + i), f"done/{i}.png") for i in range(5)]
    stack.wait_for_terminal(done, timeout=180)
    # and a bucket full of images from before, hostile keys among them, plus things an upload would skip
    new = {f"{inp}old/{i:04d}.png": _png(i) for i in range(30)}
    new.update({inp + key: _png(500 + n) for n, key in enumerate(HOSTILE)})
    skipped = {
        f"{inp}old/notes.txt": b"not an image",
        f"{inp}old/folder/": b"",
        f"{inp}old/empty.png": b"",
        "elsewhere/outside-the-input-prefix.png": _png(900),
        # sidecar files next to the photos: listed, never enqueued
        **{f"{inp}old/{i:04d}.json": b"{}" for i in range(100)},
    }
    new_ids = _put_unwatched(stack, new)
    _put_unwatched(stack, skipped)
    assert len(set(new_ids.values())) == len(new)
    pipeline = _pipeline(stack, concurrency=10)
    notes: list[str] = []
    options = Options(uri=f"s3://{ep.bucket}/", yes=True, checkpoint_dir=tmp_path / ".cutout")

    # when the operator previews it (`cutout backfill s3://bucket/ --dry-run`)
    at_the_terminal(stack)
    code, preview = _cli(capsys, "backfill", f"s3://{ep.bucket}/", "--dry-run")

    # then the estimate counts only the new images, and nothing was enqueued
    assert code == 0
    assert preview["status"] == "dry_run"
    assert preview["images"] == len(new)
    assert preview["already_jobs"] == len(done)
    assert preview["estimate"]["credits"] == 5 * len(new)
    assert preview["estimate"]["seconds"] == round(len(new) * 4 / 10)
    assert preview["skipped"] == {
        "empty_object": 1,
        "folder_marker": 1,
        "outside_input_prefix": 1 + len(done),  # the done ones' cutouts too
        "unsupported_extension": 101,
    }
    assert stack.queue_depths()["IngestQueue"] == 0
    # and a person reads the same in a table
    code, table = _text(capsys, "backfill", f"s3://{ep.bucket}/", "--dry-run")
    assert "images" in table
    assert f"{5 * len(new):,}" in table  # credits

    # when the backfill is interrupted (Ctrl-C) after a few batches
    def interrupt(sent: int, total: int) -> None:
        if sent >= 20:
            raise KeyboardInterrupt

    first = run_backfill(pipeline, options, confirm=_never, note=notes.append, on_batch=interrupt)
    assert first["status"] == "interrupted"
    assert first["enqueued"] == 20

    # and run again: it goes on after the last enqueued key
    second = run_backfill(pipeline, options, confirm=_never, note=notes.append)
    assert second["status"] == "enqueued"
    assert second["resumed_after"] is not None
    assert second["enqueued"] == len(new) - 20
    assert any("resuming after" in n for n in notes)

    # then every new image is processed with exactly one create, and the done ones were not created again
    jobs = stack.wait_for_terminal(list(new_ids.values()), timeout=180)
    assert {jobs[i]["status"] for i in new_ids.values()} == {"complete"}
    assert {jobs[new_ids[inp + k]]["source_key"] for k in HOSTILE} == {inp + k for k in HOSTILE}
    stack.emulator.wait_until(stack.quiescent, timeout=180)
    creates = _creates(stack)
    assert all(creates[f"cutout:{i}"] == 1 for i in new_ids.values())
    assert all(creates[f"cutout:{u.job_id}"] == 1 for u in done)
    assert sum(creates.values()) == len(new) + len(done)

    # and a third run finds nothing left to pay for
    third = run_backfill(
        pipeline,
        Options(uri=options.uri, yes=True, restart=True, checkpoint_dir=options.checkpoint_dir),
        confirm=_never,
        note=notes.append,
    )
    assert third["status"] == "nothing_to_do"
    assert third["already_jobs"] == len(new) + len(done)
    assert sum(_creates(stack).values()) == len(new) + len(done)


def test_backfill_stays_within_the_daily_budget_unless_acknowledged(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(webhooks=True, parameters={"DailyCreditBudget": "50"})
    inp = stack.endpoints.input_prefix
    _put_unwatched(stack, {f"{inp}b/{i:02d}.png": _png(2000 + i) for i in range(25)})
    pipeline = _pipeline(stack, daily_credit_budget=50)
    notes: list[str] = []
    asked: list[str] = []

    def yes_please(question: str) -> bool:
        asked.append(question)
        return True

    # when the operator accepts the estimate but has not acknowledged the budget
    result = run_backfill(
        pipeline,
        Options(uri=f"s3://{stack.endpoints.bucket}/{inp}b/", checkpoint_dir=tmp_path),
        confirm=yes_please,
        note=notes.append,
    )

    # then only what today's budget pays for is enqueued, and the rest is left for a later run
    assert result["budget"] == {"daily": 50, "spent_today": 0, "left_today": 50, "images_today": 10}
    assert result["capped_by_budget"] is True
    assert result["enqueued"] == 10
    assert asked == ["Enqueue 10 image(s) for 50 credits (about 0:00:13)?"]
    assert any("parks over-budget uploads" in n for n in notes)


def test_retry_of_a_failed_job_completes_and_keeps_its_history(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str], at_the_terminal: Callable[[LocalStack], None]
) -> None:
    stack = make_stack(webhooks=True)
    at_the_terminal(stack)
    pipeline = _pipeline(stack)
    # given a job that failed at Magic Hour
    stack.emulator.configure(render_error_rate=1.0)
    up = stack.upload(_png(3000), "retry/photo.png")
    failed = stack.wait_for_terminal([up], timeout=60)[up.job_id]
    assert failed["status"] == "error"
    stack.emulator.configure(render_error_rate=0.0)

    # when the operator retries the failed jobs (`cutout retry --status error --since 1h --yes`)
    code, result = _cli(capsys, "retry", "--status", "error", "--since", "1h", "--yes")

    # then the same record completes, with the failure kept in its history
    assert code == 0
    assert result["retried"] == [up.job_id]
    stack.emulator.wait_until(lambda: (stack.job(up.job_id) or {}).get("status") == "complete", timeout=60)
    job = stack.job(up.job_id)
    assert job is not None
    assert job["attempts"] == 2
    (previous,) = job["history"]
    assert previous["status"] == "error"
    assert previous["error_code"] == failed["error_code"]
    assert previous["project_id"] == failed["project_id"]
    assert job["project_id"] != failed["project_id"]
    assert _creates(stack)[f"cutout:{up.job_id}"] == 2  # the failed one and the retry

    # and a complete job is refused
    again = run_retry(
        pipeline, select(pipeline, ids=[up.job_id]), yes=True, allow_ambiguous=False, confirm=_never, note=print
    )
    assert again["refused"] == {up.job_id: "complete"}
    assert _creates(stack)[f"cutout:{up.job_id}"] == 2


def test_retry_racing_the_same_upload_creates_once(make_stack: MakeStack) -> None:
    stack = make_stack(webhooks=True)
    pipeline = _pipeline(stack)
    stack.emulator.configure(render_error_rate=1.0)
    body = _png(4000)
    up = stack.upload(body, "race/photo.png")
    assert stack.wait_for_terminal([up], timeout=60)[up.job_id]["status"] == "error"
    stack.emulator.configure(render_error_rate=0.0)

    # when a retry and a re-upload of the same bytes (the same job) happen at once
    barrier = threading.Barrier(2)
    results: list[dict[str, Any]] = []

    def retry() -> None:
        barrier.wait()
        results.append(
            run_retry(
                pipeline, select(pipeline, ids=[up.job_id]), yes=True, allow_ambiguous=False, confirm=_never, note=print
            )
        )

    def reupload() -> None:
        barrier.wait()
        stack.upload(body, "race/photo.png")

    threads = [threading.Thread(target=retry), threading.Thread(target=reupload)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then the job completes with one new create, whichever event the submit saw first
    assert results[0]["retried"] == [up.job_id]
    stack.emulator.wait_until(lambda: (stack.job(up.job_id) or {}).get("status") == "complete", timeout=60)
    stack.emulator.wait_until(stack.quiescent, timeout=30)
    assert _creates(stack)[f"cutout:{up.job_id}"] == 2
