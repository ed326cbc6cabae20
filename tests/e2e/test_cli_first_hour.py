"""The CLI as a newcomer meets it: upload without the AWS CLI, stop a backgrounded stack, one-line errors with one
exit status table, the region as the AWS CLI finds it, refusals that say what to do, and local answers that name
local things only.

One local stack for the module (template.yaml in moto, the real handlers, the emulator over HTTP); the CLI runs
in this process (``cli.main``) except where the process itself is the point (``local up`` / ``local down``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cutout_dev import cli, local_cli
from cutout_dev.local_stack import LocalStack, LocalStackConfig, Uploaded
from cutout_dev.ops.output import EXIT_CODES
from cutout_dev.ops.target import resolve
from cutout_dev.preexisting import unwatched

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = LocalStackConfig(
        function_log=tmp_path_factory.mktemp("first-hour") / "functions.log",
        real_magic_hour=False,
        emulator={"queue_seconds": 0.05, "render_seconds": 0.2},
        schedule_interval_seconds=0,
    )
    with LocalStack(config) as running:
        yield running


@pytest.fixture
def local_state(stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What ``cutout local up`` writes, in a temp file; the shell's working directory a scratch one."""
    state = tmp_path / "endpoints.json"
    monkeypatch.setenv("CUTOUT_LOCAL_STACK_FILE", str(state))
    monkeypatch.chdir(tmp_path)
    local_cli.write_state(stack)
    return state


def _out(text: str) -> str:
    """Stdout without the functions' one-line EMF JSON (printed to whatever sys.stdout is: pytest's capture)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith('{"'))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """(exit status, parsed --json stdout, stderr)."""
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    out = _out(captured.out)
    return code, json.loads(out) if out.strip() else None, captured.err


def text(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, _out(captured.out), captured.err


def _png(path: Path, shade: int) -> Path:
    Image.new("RGB", (24, 24), (shade, 90, 200)).save(path, "PNG")
    return path


def _put_unwatched(stack: LocalStack, objects: dict[str, bytes]) -> None:
    """Objects from before Cutout watched the bucket: written with its notifications off (no event)."""
    s3 = stack.client("s3")
    with unwatched(s3, stack.endpoints.bucket):
        for key, body in objects.items():
            s3.put_object(Bucket=stack.endpoints.bucket, Key=key, Body=body)


def _terminal(stack: LocalStack, job_id: str, timeout: float = 60) -> dict[str, Any]:
    stack.emulator.wait_until(
        lambda: (stack.job(job_id) or {}).get("status") in ("complete", "error", "rejected"), timeout=timeout
    )
    job = stack.job(job_id)
    assert job is not None
    return job


# -- upload ----------------------------------------------------------------------------------------------------
def test_upload_puts_files_under_the_input_prefix_and_prints_each_key_and_job_id(
    stack: LocalStack, local_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given two images on disk
    files = [_png(tmp_path / "a shop item.png", 10), _png(tmp_path / "b.png", 20)]

    # when they are uploaded with a prefix, as a person runs it
    code, out, err = text(capsys, "upload", *map(str, files), "--prefix", "shop")

    # then one line per file names its key and job id, and those jobs complete
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    bucket = stack.endpoints.bucket
    for line, name in zip(lines, ("a shop item.png", "b.png"), strict=True):
        uri, _, job = line.rpartition("  job ")
        assert uri == f"s3://{bucket}/incoming/shop/{name}"
        assert _terminal(stack, job)["status"] == "complete"
    assert "cutout jobs" in err  # the hint goes to stderr: stdout stays one line per file


def test_upload_of_a_missing_file_uploads_nothing_and_says_so(
    stack: LocalStack, local_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _png(tmp_path / "fine.png", 30)
    code, _, err = text(capsys, "upload", str(good), str(tmp_path / "typo.png"))

    assert code == 1
    assert err.strip() == f"cutout: not a file: {tmp_path / 'typo.png'} (nothing was uploaded)"
    listed = stack.client("s3").list_objects_v2(Bucket=stack.endpoints.bucket, Prefix="incoming/fine.png")
    assert listed.get("KeyCount", 0) == 0


def _keys(stack: LocalStack, prefix: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.endpoints.bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_upload_refuses_what_the_submit_would_reject_one_line_each_and_uploads_nothing(
    stack: LocalStack, local_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a 0-byte file, a 30 MB one (over the stack's 20 MiB MaxInputBytes) and a text file named .png
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")  # an image's first bytes: only its size is wrong
        f.truncate(30 * 1024 * 1024)
    notes = tmp_path / "notes.png"
    notes.write_text("plain text, not an image\n", encoding="utf-8")
    good = _png(tmp_path / "fine too.png", 50)

    # when they are uploaded together
    code, out, err = text(capsys, "upload", str(empty), str(huge), str(notes), str(good), "--prefix", "checked/")

    # then one refusal line each, naming the file and the reason, and nothing at all is uploaded
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert lines[:3] == [
        f"cutout: refused {empty}: empty_object: the object is empty (0 bytes)",
        f"cutout: refused {huge}: too_large: {30 * 1024 * 1024} bytes exceeds the limit of 20971520",
        f"cutout: refused {notes}: not_an_image: the bytes are not a recognised image format",
    ]
    assert len(lines) == 4
    assert "nothing was uploaded" in lines[3]
    assert _keys(stack, "incoming/checked/") == []


def test_upload_force_sends_them_anyway_and_prints_the_id_cutout_job_finds_even_for_an_empty_file(
    stack: LocalStack, local_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    notes = tmp_path / "notes.png"
    notes.write_text("plain text, not an image\n", encoding="utf-8")

    code, doc, err = run(capsys, "upload", str(empty), str(notes), "--prefix", "forced/", "--force")

    assert code == 0
    assert "uploaded anyway" in err
    for uploaded, reason in zip(doc["uploaded"], ("empty_object", "not_an_image"), strict=True):
        assert _terminal(stack, uploaded["job_id"])["error_code"] == reason
        code, job, _ = run(capsys, "job", uploaded["uri"])
        assert (code, job["job_id"]) == (0, uploaded["job_id"])


def test_prefix_means_the_same_in_upload_and_jobs_relative_to_the_input_prefix(
    stack: LocalStack, local_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _png(tmp_path / "p1.png", 70)
    second = _png(tmp_path / "p2.png", 80)

    # a prefix relative to the input prefix, and one that already starts with it, name the same folder
    _, relative, _ = run(capsys, "upload", str(first), "--prefix", "same/")
    _, absolute, _ = run(capsys, "upload", str(second), "--prefix", "incoming/same/")
    assert relative["uploaded"][0]["key"] == "incoming/same/p1.png"
    assert absolute["uploaded"][0]["key"] == "incoming/same/p2.png"
    for doc in (relative, absolute):
        _terminal(stack, doc["uploaded"][0]["job_id"])

    # and jobs finds them with either spelling
    for spelled in ("same/", "incoming/same/"):
        code, jobs, _ = run(capsys, "jobs", "--prefix", spelled)
        assert code == 0
        assert {j["source_key"] for j in jobs["jobs"]} == {"incoming/same/p1.png", "incoming/same/p2.png"}


def test_upload_background_sets_the_metadata_and_refuses_a_missing_background(
    stack: LocalStack, local_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _png(tmp_path / "on white.png", 90)
    code, _, err = text(capsys, "upload", str(image), "--background", "backgrounds/none.png")
    assert code == 1
    assert f"cutout: refused --background: background s3://{stack.endpoints.bucket}/backgrounds/none.png" in err

    _png(tmp_path / "white.png", 255)
    stack.client("s3").put_object(
        Bucket=stack.endpoints.bucket, Key="backgrounds/white.png", Body=(tmp_path / "white.png").read_bytes()
    )
    code, doc, _ = run(capsys, "upload", str(image), "--background", "backgrounds/white.png")
    assert code == 0
    key = doc["uploaded"][0]["key"]
    head = stack.client("s3").head_object(Bucket=stack.endpoints.bucket, Key=key)
    assert head["Metadata"] == {"background-key": "backgrounds/white.png"}
    job = _terminal(stack, doc["uploaded"][0]["job_id"])
    assert (job["status"], job["background_key"]) == ("complete", "backgrounds/white.png")


def test_backfill_of_a_missing_bucket_is_one_line_naming_it(
    local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = text(capsys, "backfill", "s3://no-such-bucket/incoming/", "--dry-run")

    assert code == 1
    assert out == ""
    assert err.strip().splitlines() == [
        "cutout: bucket no-such-bucket not found: check the name (`cutout status` shows the stack's bucket)"
    ]


# -- one line, one exit table ----------------------------------------------------------------------------------
def test_a_broken_query_is_one_line_naming_jmespath_and_exits_1(
    local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = text(capsys, "jobs", "--query", "jobs[?")

    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("cutout: --query 'jobs[?' is not a JMESPath expression")
    assert "Traceback" not in err


def test_job_of_an_object_in_a_missing_bucket_says_the_bucket_is_missing_and_where_uploads_go(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = text(capsys, "job", "s3://no-such-bucket/x.png")

    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "bucket no-such-bucket not found" in err
    assert f"s3://{stack.endpoints.bucket}/incoming/" in err

    code, _, err = text(capsys, "job", f"s3://{stack.endpoints.bucket}/incoming/never-uploaded.png")
    assert code == 1
    assert f"no object 'incoming/never-uploaded.png' in bucket {stack.endpoints.bucket}" in err


def test_help_ends_with_the_exit_status_table_that_docs_cli_md_shows(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert cli.exit_codes_text() in help_text
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    for code, meaning in EXIT_CODES:
        assert f"| {code} | {meaning} |" in docs


# -- the region, as the AWS CLI picks it -------------------------------------------------------------------------
@pytest.fixture
def no_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A shell with no region anywhere: no variables, a profile file without one."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "aws-config"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    return monkeypatch


def test_aws_region_is_honoured_and_beats_aws_default_region_but_not_the_flag(
    stack: LocalStack, no_region: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # (the local stack's process points boto3 at moto with AWS_ENDPOINT_URL, as a shell would point it at AWS)
    # given only AWS_REGION
    no_region.setenv("AWS_REGION", stack.endpoints.region)
    code, status, _ = run(capsys, "--stack", "cutout-local", "status")
    assert code == 0
    assert status["stack"] == "cutout-local"

    # given AWS_REGION elsewhere and AWS_DEFAULT_REGION where the stack is: AWS_REGION wins (not found there)
    no_region.setenv("AWS_REGION", "eu-west-1")
    no_region.setenv("AWS_DEFAULT_REGION", stack.endpoints.region)
    code, _, err = run(capsys, "--stack", "cutout-local", "status")
    assert code == 1
    assert err.strip() == "cutout: stack cutout-local: Stack with id cutout-local does not exist"

    # and --region beats both
    assert resolve("cutout-local", region=stack.endpoints.region).region == stack.endpoints.region


def test_no_region_anywhere_says_to_pass_region(
    stack: LocalStack, no_region: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = text(capsys, "--stack", "cutout-local", "status")

    assert code == 1
    assert err.strip() == (
        "cutout: stack cutout-local: no AWS region: pass --region R (or set AWS_REGION, or region in the profile)"
    )


# -- refusals say what to do instead ---------------------------------------------------------------------------
def test_retry_of_a_rejected_job_is_refused_with_exit_1_and_says_to_upload_a_corrected_file(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rejected = stack.upload(b"plain text, not an image", key="refused/notes.jpg")
    assert _terminal(stack, rejected.job_id)["status"] == "rejected"

    code, out, _ = text(capsys, "retry", rejected.job_id, "--yes")

    assert code == 1  # refused: an error of the command's, not "a person is needed" (2)
    (row,) = [line for line in out.splitlines() if line.startswith(rejected.job_id)]
    assert "refused: rejected" in row
    assert "a rejected upload is fixed by uploading a corrected file again" in row

    # and a script reads the same in the JSON, and one line per refusal on stderr
    code, doc, err = run(capsys, "retry", rejected.job_id, "--yes")
    assert code == 1
    assert doc["refused"] == {rejected.job_id: "rejected"}
    assert doc["instead"][rejected.job_id].startswith("a rejected upload is fixed by uploading a corrected file")
    assert err.strip() == f"{rejected.job_id}: refused (rejected): {doc['instead'][rejected.job_id]}"


# -- history in order, timestamps whole --------------------------------------------------------------------------
def test_a_retried_job_keeps_its_upload_time_and_shows_its_attempts_in_order_with_whole_timestamps(
    stack: LocalStack, local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a job that failed at Magic Hour
    stack.emulator.configure(render_error_rate=1.0)
    try:
        up: Uploaded = stack.upload(_png(local_state.parent / "flaky.png", 40), key="flaky/photo.png")
        failed = _terminal(stack, up.job_id)
    finally:
        stack.emulator.configure(render_error_rate=0.0)
    assert failed["status"] == "error"

    # when it is retried and completes
    code, retried, _ = run(capsys, "retry", up.job_id, "--yes")
    assert (code, retried["retried"]) == (0, [up.job_id])
    stack.emulator.wait_until(lambda: (stack.job(up.job_id) or {}).get("status") == "complete", timeout=60)

    # then the record keeps its upload time, and its steps read in order from the upload
    code, job, _ = run(capsys, "job", up.job_id)
    assert code == 0
    assert job["created_at"] == failed["created_at"]
    steps = [s["step"] for s in job["steps"]]
    assert steps[0] == "created"
    assert steps.index("created") < steps.index("retry_pending") < steps.index("completed")
    assert "attempt_started" not in steps  # one step per moment: the reopen is the retry_pending step
    assert [s["at"] for s in job["steps"]] == sorted(s["at"] for s in job["steps"])
    (previous,) = job["previous_attempts"]
    assert previous["started_at"] == failed["created_at"]

    # and a person sees each timestamp whole (on one line), the earlier attempt first
    code, human, _ = text(capsys, "job", up.job_id)
    attempts = human.split("Earlier attempts", 1)[1]
    header, row = attempts.strip().splitlines()[:2]
    assert header.split() == ["started", "ended", "status", "error", "credits", "project", "message"]
    assert ISO.findall(row.split()[0]) and row.split()[0] == previous["started_at"]
    assert row.split()[1] == previous["ended_at"]
    for line in human.splitlines():
        for token in line.split():
            if token[:4].isdigit() and "T" in token:
                assert ISO.fullmatch(token), f"a timestamp broken mid-token: {token!r} in {line!r}"


# -- local facts only --------------------------------------------------------------------------------------------
def test_on_the_local_stack_status_and_job_name_the_function_log_not_aws_consoles(
    stack: LocalStack, local_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up = stack.upload(_png(tmp_path / "local.png", 50), key="local/facts.png")
    _terminal(stack, up.job_id)
    log_file = str(stack.config.function_log)

    code, status, _ = run(capsys, "status")
    assert status["dashboard"] is None
    assert status["logs"] == log_file
    _, human, _ = text(capsys, "status")
    assert "console.aws.amazon.com" not in human
    assert f"Logs       {log_file}" in human

    code, job, _ = run(capsys, "job", up.job_id)
    assert code == 0
    assert "logs_insights" not in job
    assert job["local_logs"] == {"file": log_file, "command": f"grep {up.job_id} {log_file}"}
    assert up.job_id in Path(log_file).read_text(encoding="utf-8")  # the command finds something
    _, human, _ = text(capsys, "job", up.job_id)
    assert "Logs Insights" not in human
    assert "/aws/lambda/" not in human

    # while the same stack named as a deployed one (CloudFormation) answers with its AWS places
    _, deployed, _ = run(capsys, "--stack", "cutout-local", "job", up.job_id)
    assert "/aws/lambda/cutout-local/finalize" in deployed["logs_insights"]["log_groups"]


# -- the backfill says what it counted, and its dry run writes nothing ------------------------------------------
def test_backfill_dry_run_writes_no_checkpoint_and_does_not_price_a_non_image_as_an_image(
    stack: LocalStack, local_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given objects from before the stack watched (put without an event): one image, one text file named .jpg
    bucket = stack.endpoints.bucket
    old = {
        "incoming/old/photo.png": _png(tmp_path / "o.png", 60).read_bytes(),
        "incoming/old/readme.jpg": b"not a jpeg at all",
    }
    _put_unwatched(stack, old)

    # when the operator previews the backfill
    code, plan, _ = run(capsys, "backfill", f"s3://{bucket}/incoming/old/", "--dry-run")

    # then only the real image is priced, the estimate says how it counted, and no checkpoint is named or written
    assert code == 0
    assert plan["images"] == 1
    assert plan["estimate"]["credits"] == 5
    assert plan["skipped"] == {"not_an_image": 1}
    assert "first bytes" in plan["counted"]
    assert plan["checkpoint"] is None
    assert not (tmp_path / ".cutout").exists()
    _, human, _ = text(capsys, "backfill", f"s3://{bucket}/incoming/old/", "--dry-run")
    assert "none written (a dry run writes nothing)" in human
    assert not (tmp_path / ".cutout").exists()

    # and priced by name only (--no-inspect), it says the credits are at most that
    _, quick, _ = run(capsys, "backfill", f"s3://{bucket}/incoming/old/", "--dry-run", "--no-inspect")
    assert quick["images"] == 2
    assert "at most" in quick["counted"]


# -- local up (quiet) and local down, as separate processes -------------------------------------------------------
def test_local_up_in_the_background_is_quiet_and_local_down_stops_it_cleanly(
    tmp_path: Path, samples: dict[str, Path]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAGIC_HOUR_"))}
    env["CUTOUT_LOCAL_STACK_FILE"] = str(tmp_path / "endpoints.json")
    cutout = [sys.executable, "-m", "cutout_dev.cli"]

    def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cutout, *argv], env=env, capture_output=True, text=True, timeout=60, check=False)

    # given no stack running: down says so
    nothing = run_cli("local", "down")
    assert (nothing.returncode, nothing.stdout.strip()) == (0, "no local stack is running (nothing to stop)")

    # given `cutout local up` started in the background
    with (tmp_path / "up.out").open("w") as out, (tmp_path / "up.err").open("w") as err:
        up = subprocess.Popen([*cutout, "local", "up", "--schedule-interval", "0"], env=env, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / "endpoints.json").exists():
            assert up.poll() is None, (tmp_path / "up.err").read_text()
            assert time.monotonic() < deadline, "the local stack did not come up"
            time.sleep(0.5)

        # when an image is uploaded with `cutout upload` and has gone through
        uploaded = run_cli("upload", str(samples["red flower.png"]))
        assert uploaded.returncode == 0, uploaded.stderr
        job_id = uploaded.stdout.split("  job ")[1].strip()
        while True:
            job = json.loads(run_cli("job", job_id, "--json").stdout or "{}")
            if job.get("status") == "complete":
                break
            assert time.monotonic() < deadline + 60, job
            time.sleep(0.5)

        # and `cutout local down` is run from another terminal
        down = run_cli("local", "down")
    finally:
        if up.poll() is None:
            up.terminate()
        up.wait(timeout=30)

    # then the stack stopped cleanly, its state file is gone, and another down says nothing runs
    assert down.returncode == 0
    assert down.stdout.strip() == f"local stack stopped (pid {up.pid})"
    assert up.returncode == 0
    assert not (tmp_path / "endpoints.json").exists()
    # and its terminal showed progress lines, each once, and none of the functions' logs or metrics
    shown = (tmp_path / "up.out").read_text() + (tmp_path / "up.err").read_text()
    log_file = tmp_path / "functions.log"
    assert shown.count(str(log_file)) == 1  # named once
    assert "No application metrics to publish" not in shown
    assert '{"' not in shown  # no Powertools JSON, no EMF
    progress = [line for line in shown.splitlines() if "incoming/red flower.png  ->" in line]
    assert [line.split("->")[1].split()[0] for line in progress][-1] == "complete"
    assert len(progress) == len(set(progress))
    assert shown.rstrip().endswith("stopped")
    # while the function log holds what the functions printed
    logged = log_file.read_text(encoding="utf-8")
    assert job_id in logged
    assert '"_aws"' in logged  # EMF
