"""The ``cutout`` ops commands against the local stack (template.yaml in moto, the real handlers, the emulator).

Two ways to find the stack, both exercised: the local one (``.local-stack/endpoints.json``, here a temp file)
and a deployed one (``--stack NAME`` → CloudFormation DescribeStacks), which works against moto server because
the local stack is created through moto's CloudFormation. Every AWS call goes over HTTP to moto server, so
botocore checks its parameters against the service models; the one call moto lacks (SQS StartMessageMoveTask)
is checked with botocore's Stubber, which validates against the same models.

One stack per module (a few seconds to start), seeded once: three images and one non-image with a hostile key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from cutout_dev import cli, local_cli
from cutout_dev.local_stack import LocalStack, LocalStackConfig, Uploaded
from cutout_dev.ops.target import resolve

BUDGET = 100
HOSTILE_KEY = "odd/[draft] 50% +plus (1).jpg"  # brackets (rich markup), %, +, spaces, parentheses


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = LocalStackConfig(
        # The functions' logs and EMF go to a file: stdout is the CLI's, parsed as JSON here.
        function_log=tmp_path_factory.mktemp("ops") / "functions.log",
        real_magic_hour=False,
        emulator={"queue_seconds": 0.05, "render_seconds": 0.2},
        schedule_interval_seconds=0,
        parameters={"DailyCreditBudget": str(BUDGET)},
    )
    with LocalStack(config) as running:
        yield running


@pytest.fixture(scope="module")
def seeded(stack: LocalStack, samples: dict[str, Path]) -> dict[str, Uploaded]:
    uploads = {name: stack.upload(samples[name]) for name in ("red flower.png", "café (1).jpg", "green leaf.webp")}
    uploads["hostile"] = stack.upload(b"plain text, not an image", key=HOSTILE_KEY)
    stack.wait_for_terminal(uploads.values(), timeout=60)
    stack.emulator.wait_until(stack.quiescent, timeout=15)
    return uploads


@pytest.fixture
def local_state(stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What ``cutout local up`` writes, in a temp file (never the checkout's .local-stack/)."""
    state = tmp_path / "endpoints.json"
    monkeypatch.setenv("CUTOUT_LOCAL_STACK_FILE", str(state))
    local_cli.write_state(stack)
    return state


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """Run the CLI with --json; return (exit status, parsed stdout)."""
    code = cli.main([*argv, "--json"])
    out = _cli_lines(capsys.readouterr().out)
    return code, json.loads(out) if out.strip() else None


def _cli_lines(out: str) -> str:
    """Stdout without the functions' EMF lines: Powertools prints metrics to whatever sys.stdout is when a function
    running in this process flushes (pytest's capture, then). They are one-line JSON; the CLI's is indented."""
    return "\n".join(line for line in out.splitlines() if not line.startswith('{"'))


def text(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, _cli_lines(capsys.readouterr().out)


# -- status ----------------------------------------------------------------------------------------------------
def test_status_counts_jobs_by_status_and_reports_credits_against_the_budget(
    seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, status = run(capsys, "status")

    assert code == 0  # nothing in a DLQ, no alarm firing
    assert status["stack"] == "cutout-local"
    assert status["local"] is True
    assert status["counts"]["complete"] == 3
    assert status["counts"]["rejected"] == 1
    assert status["in_flight"] == 0
    assert status["oldest_open"] is None
    assert status["dlqs"] == {"IngestDLQ": 0, "PollDLQ": 0, "CompletionDLQ": 0, "RenditionsDLQ": 0}
    assert status["credits_today"]["spent"] == 15  # three creates at 5 credits
    assert status["credits_today"]["budget"] == BUDGET
    assert status["credits_today"]["left"] == BUDGET - 15
    assert status["alarms"] == []
    assert status["dashboard"] is None  # no CloudWatch console for the local stack; --stack shows the deployed one


def test_status_needs_a_person_when_a_dlq_holds_messages_or_an_alarm_fires_and_redrive_empties_the_dlq(
    stack: LocalStack, seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = stack.client("sqs")
    ingest_dlq = stack.endpoints.queues["IngestDLQ"]
    # Given a message the submit function gave up on (a malformed one: the retry is harmless)...
    sqs.send_message(QueueUrl=ingest_dlq, MessageBody=json.dumps({"not": "an S3 event"}))
    # ...and an alarm of the stack firing
    cloudwatch = stack.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName="cutout-local/SubmitErrors", StateValue="ALARM", StateReason="test")
    try:
        code, status = run(capsys, "status")
        assert code == 2
        assert status["dlqs"]["IngestDLQ"] == 1
        assert [a["name"] for a in status["alarms"]] == ["cutout-local/SubmitErrors"]
        assert any("cutout redrive IngestDLQ" in r for r in status["reasons"])

        code, human = text(capsys, "status")
        assert code == 2
        assert "Needs attention" in human
        assert "IngestDLQ 1" in human

        # When the DLQ is redriven (the local stack moves the messages itself: moto has no move tasks)
        code, moved = run(capsys, "redrive", "IngestDLQ")
        assert code == 0
        assert moved == {"dlq": "IngestDLQ", "destination": "IngestQueue", "moved": 1, "task_handle": None}
    finally:
        cloudwatch.set_alarm_state(AlarmName="cutout-local/SubmitErrors", StateValue="OK", StateReason="test")
    stack.emulator.wait_until(stack.quiescent, timeout=15)
    code, status = run(capsys, "status")
    assert status["dlqs"]["IngestDLQ"] == 0
    assert code == 0


# -- jobs / job ------------------------------------------------------------------------------------------------
def test_jobs_lists_job_records_only_newest_first_with_credits_errors_and_outputs(
    seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, listed = run(capsys, "jobs")

    assert code == 0
    jobs = listed["jobs"]
    assert {j["job_id"] for j in jobs} == {u.job_id for u in seeded.values()}  # no budget#/webhook# items
    created = [j["created_at"] for j in jobs]
    assert created == sorted(created, reverse=True)
    by_id = {j["job_id"]: j for j in jobs}
    flower = by_id[seeded["red flower.png"].job_id]
    assert flower["credits"] == 5
    assert flower["output_key"] == "cutouts/red flower.png"
    hostile = by_id[seeded["hostile"].job_id]
    assert hostile["status"] == "rejected"
    assert hostile["error_code"] == "not_an_image"
    assert hostile["credits"] == 0
    assert hostile["source_key"] == f"incoming/{HOSTILE_KEY}"


def test_jobs_filters_by_status_prefix_age_and_limit(
    seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rejected = run(capsys, "jobs", "--status", "rejected")
    assert [j["job_id"] for j in rejected["jobs"]] == [seeded["hostile"].job_id]

    _, prefixed = run(capsys, "jobs", "--prefix", "incoming/odd/")
    assert [j["job_id"] for j in prefixed["jobs"]] == [seeded["hostile"].job_id]

    _, recent = run(capsys, "jobs", "--since", "1d")
    assert recent["count"] == 4
    _, future = run(capsys, "jobs", "--since", "2999-01-01")
    assert future["jobs"] == []

    _, limited = run(capsys, "jobs", "--limit", "2")
    assert limited["count"] == 2

    _, ids = run(capsys, "jobs", "--status", "complete", "--query", "jobs[].job_id")
    assert sorted(ids) == sorted(seeded[n].job_id for n in ("red flower.png", "café (1).jpg", "green leaf.webp"))


def test_jobs_table_prints_hostile_keys_literally(
    seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, human = text(capsys, "jobs", "--status", "rejected")
    assert code == 0
    assert "[draft] 50% +plus (1).jpg" in human
    assert "1 job(s)" in human


def test_job_shows_the_record_its_history_and_a_logs_insights_query(
    stack: LocalStack, seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flower = seeded["red flower.png"]
    code, job = run(capsys, "job", flower.job_id)

    assert code == 0
    assert job["status"] == "complete"
    assert job["project_id"]
    assert job["credits"] == 5
    assert job["output"] == f"s3://{stack.endpoints.bucket}/cutouts/red flower.png"
    steps = [s["step"] for s in job["steps"]]
    assert steps[0] == "created"
    assert steps[-1] == "completed"
    assert "submitted" in steps
    assert job["local_logs"]["file"] == str(stack.config.function_log)
    # the same stack named as a deployed one answers with its CloudWatch log groups
    _, job = run(capsys, "--stack", "cutout-local", "job", flower.job_id)
    insights = job["logs_insights"]
    assert f'filter job_id = "{flower.job_id}"' in insights["query"]
    assert "/aws/lambda/cutout-local/finalize" in insights["log_groups"]
    assert "aws logs start-query" in insights["command"]


def test_job_by_s3_uri_resolves_the_job_id_from_the_objects_etag(
    stack: LocalStack, seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"s3://{stack.endpoints.bucket}/incoming/{HOSTILE_KEY}"
    code, job = run(capsys, "job", uri)

    assert code == 0
    assert job["job_id"] == seeded["hostile"].job_id
    assert job["error_code"] == "not_an_image"
    assert job["error_message"]

    code, human = text(capsys, "job", uri)
    assert code == 0
    assert "not_an_image" in human
    assert "History" in human


def test_job_that_does_not_exist_is_an_error(
    seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["job", "0" * 32]) == 1
    assert f"no job {'0' * 32}" in capsys.readouterr().err
    counter = f"budget#{datetime.now(UTC):%Y-%m-%d}"  # exists (the spend guard's), and is not a job
    assert cli.main(["job", counter]) == 1


# -- spend -----------------------------------------------------------------------------------------------------
def test_spend_reports_credits_and_images_per_day(
    seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, spend = run(capsys, "spend", "--days", "3")

    assert code == 0
    assert len(spend["days"]) == 3
    today = spend["days"][0]
    assert today["images"] == 3  # the non-image never reached Magic Hour
    assert today["credits"] == 15
    assert today["jobs"] == 4
    assert today["budget_counter"] == 15  # the spend guard's own count agrees with the records
    assert spend["total"]["credits"] == 15
    assert all(d["credits"] == 0 for d in spend["days"][1:])

    assert cli.main(["spend", "--days", "0"]) == 1


# -- the deployed-stack path -----------------------------------------------------------------------------------
def test_a_stack_named_with_stack_is_found_through_cloudformation_and_reads_the_same(
    stack: LocalStack, seeded: dict[str, Uploaded], local_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The local stack's process points boto3 at moto (AWS_ENDPOINT_URL), as an operator's shell would at AWS.
    code, deployed = run(capsys, "--stack", "cutout-local", "status")
    _, local = run(capsys, "status")

    assert code == 0
    assert deployed["local"] is False
    assert deployed["dashboard"].endswith("#dashboards/dashboard/cutout-local")
    assert deployed["counts"] == local["counts"]
    assert deployed["credits_today"] == local["credits_today"]

    target = resolve("cutout-local")
    assert target.table == stack.endpoints.table
    assert target.bucket == stack.endpoints.bucket
    assert target.input_prefix == "incoming/"
    assert target.output_prefix == "cutouts/"
    assert target.daily_credit_budget == BUDGET
    assert set(target.dead_letter_queues) == {"IngestDLQ", "PollDLQ", "CompletionDLQ", "RenditionsDLQ"}
    assert target.alarm_prefix == "cutout-local/"
    assert target.log_groups["Finalize"] == "/aws/lambda/cutout-local/finalize"


def test_redrive_on_aws_starts_an_sqs_message_move_task_from_the_dlq_to_its_source_queue(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    target = resolve("cutout-local")
    dlq, source = target.queue("PollDLQ"), target.queue("PollQueue")
    assert dlq.arn
    assert source.arn
    sqs = target.client("sqs")
    with Stubber(sqs) as stub:  # moto has no message move tasks; Stubber checks the call against the model
        stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "task-handle-1"},
            expected_params={"SourceArn": dlq.arn, "DestinationArn": source.arn},
        )
        args = cli.build_parser().parse_args(["redrive", "PollDLQ", "--json"])
        code = args.run(args, target)
        stub.assert_no_pending_responses()

    assert code == 0
    result = json.loads(_cli_lines(capsys.readouterr().out))
    assert result == {"dlq": "PollDLQ", "destination": "PollQueue", "moved": None, "task_handle": "task-handle-1"}


def test_a_stack_that_does_not_exist_is_an_error(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--stack", "no-such-stack", "status"]) == 1
    assert "no-such-stack" in capsys.readouterr().err

    assert cli.main(["status", "--stack", "cutout-local", "--profile", "no-such-profile"]) == 1
    assert "no-such-profile" in capsys.readouterr().err


def test_without_a_running_local_stack_the_commands_say_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUTOUT_LOCAL_STACK_FILE", str(tmp_path / "absent.json"))
    assert cli.main(["status"]) == 1
    assert "cutout local up" in capsys.readouterr().err


def test_usage_errors_exit_1_keeping_2_for_a_person_is_needed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["jobs", "--since", "yesterday-ish"])
    assert exited.value.code == 1
    assert "--since" in capsys.readouterr().err


def test_status_asks_cloudwatch_for_the_stacks_alarms_in_alarm_only(stack: LocalStack) -> None:
    from cutout_dev.ops.status import alarms_firing

    target = resolve("cutout-local")
    cloudwatch = target.client("cloudwatch")
    # moto applies only one of AlarmNamePrefix/StateValue, so the exact request is checked against the model here.
    firing = {
        "AlarmName": "cutout-local/StuckJobs",
        "StateValue": "ALARM",
        "StateReason": "Threshold Crossed",
        "StateUpdatedTimestamp": datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
    }
    with Stubber(cloudwatch) as stub:
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [firing], "CompositeAlarms": []},
            expected_params={"AlarmNamePrefix": "cutout-local/", "StateValue": "ALARM"},
        )
        alarms = alarms_firing(target)
        stub.assert_no_pending_responses()

    assert alarms == [
        {"name": "cutout-local/StuckJobs", "reason": "Threshold Crossed", "since": "2026-11-30T09:00:00+00:00"}
    ]
