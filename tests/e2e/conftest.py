"""e2e fixtures: the local stack (moto server + resources from a SAM template + in-process handlers).

Two kinds of stacks:
* ``toy_stack`` — a small SAM template with throwaway handlers written to a tmp dir: checks the Lambda-like
  machinery itself (event shapes, partial batch responses, DLQ, Function URL, schedules), independent of Cutout;
* ``make_stack`` — template.yaml with the real handlers: the Cutout pipeline end to end.

Timings are shortened through the stack's options (emulator render time, queue visibility timeout), never by
patching the code under test.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.local_stack.stack import PROJECT_ROOT
from cutout_dev.make_samples import NON_IMAGE, SAMPLES, generate

HANDLERS = ("submit", "webhook", "poll", "finalize")

# The toy template mirrors the shapes Cutout's template uses (Globals env with Refs, an SQS source with
# partial batch responses, batching window and MaximumConcurrency, a DLQ redrive, a Function URL, a schedule).
TOY_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  OutDir:
    Type: String
  Label:
    Type: String
    Default: default-label
Globals:
  Function:
    Runtime: python3.13
    Timeout: 5
    Environment:
      Variables:
        OUT_DIR: !Ref OutDir
        LABEL: !Sub "${Label}-${AWS::Region}"
        WORK_QUEUE_URL: !Ref WorkQueue
Resources:
  WorkDLQ:
    Type: AWS::SQS::Queue
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDLQ.Arn
        maxReceiveCount: 2
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
  Secret:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: !Sub "${AWS::StackName}/secret"
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.lambda_handler
      Environment:
        Variables:
          TABLE: !Ref Table
          SECRET_ID: !Ref Secret
          HOOK_URL: !GetAtt HookFunctionUrl.FunctionUrl
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 4
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {MaximumConcurrency: 2}
  HookFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hook/
      Handler: app.lambda_handler
      FunctionUrlConfig: {AuthType: NONE}
  TickFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: tick/
      Handler: app.lambda_handler
      Events:
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
Outputs:
  WorkQueueUrl:
    Value: !Ref WorkQueue
  HookUrl:
    Value: !GetAtt HookFunctionUrl.FunctionUrl
"""

# Writes every event it gets to OUT_DIR (one JSON file per invocation). Bodies decide the outcome:
# "fail" → listed in batchItemFailures; "boom" anywhere in the batch → the invocation raises.
# The file appears whole (written aside, then renamed): tests read the directory while workers still write.
WORKER = """
import json, os, uuid

def lambda_handler(event, context):
    path = os.path.join(os.environ["OUT_DIR"], "worker-" + uuid.uuid4().hex + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump({"event": event, "env": {k: os.environ.get(k) for k in ("LABEL", "TABLE", "SECRET_ID",
                   "HOOK_URL", "WORK_QUEUE_URL")},
                   "context": {"function_name": context.function_name,
                               "remaining": context.get_remaining_time_in_millis(),
                               "memory": context.memory_limit_in_mb,
                               "arn": context.invoked_function_arn,
                               "request_id": context.aws_request_id}}, f)
    os.replace(path + ".tmp", path)
    bodies = [r["body"] for r in event["Records"]]
    if "boom" in bodies:
        raise RuntimeError("boom")
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]
                                  if r["body"] == "fail"]}
"""

HOOK = """
import base64, json

def lambda_handler(event, context):
    body = event.get("body", "")
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    if event["rawPath"] == "/raise":
        raise ValueError("bad request")
    if event["rawPath"] == "/bare":
        return {"echo": body}
    return {"statusCode": 202, "headers": {"x-seen": event["headers"].get("x-custom", "")},
            "body": json.dumps({"event": event, "body": body})}
"""

TICK = """
import json, os, uuid

def lambda_handler(event, context):
    path = os.path.join(os.environ["OUT_DIR"], "tick-" + uuid.uuid4().hex + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(event, f)
    os.replace(path + ".tmp", path)
"""


@pytest.fixture
def toy_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for name, code in (("worker", WORKER), ("hook", HOOK), ("tick", TICK)):
        (root / name).mkdir(parents=True)
        (root / name / "app.py").write_text(textwrap.dedent(code), encoding="utf-8")
    (root / "template.yaml").write_text(TOY_TEMPLATE, encoding="utf-8")
    (tmp_path / "out").mkdir()
    return root


@pytest.fixture
def toy_stack(toy_project: Path) -> Iterator[LocalStack]:
    out = toy_project.parent / "out"
    config = LocalStackConfig(
        template=toy_project / "template.yaml",
        stack_name="toy",
        parameters={"OutDir": str(out), "Label": "toy"},
        real_magic_hour=False,
        # Retries come back after 2 s instead of the template's 30 s; it must stay above the batching window
        # (1 s) plus processing, as on AWS, or a batch is redelivered while it is still being processed.
        visibility_timeout_seconds=2,
        schedule_interval_seconds=0.5,
    )
    with LocalStack(config) as stack:
        yield stack


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    paths = {p.name: p for p in generate(PROJECT_ROOT / "samples")}
    assert set(paths) == {*SAMPLES, NON_IMAGE}
    return paths


@pytest.fixture
def make_stack() -> Iterator[Callable[..., LocalStack]]:
    """Start the Cutout local stack with overrides; stopped at teardown."""
    started: list[LocalStack] = []

    def start(**overrides: Any) -> LocalStack:
        emulator = {"queue_seconds": 0.05, "render_seconds": 0.2, **overrides.pop("emulator", {})}
        config = LocalStackConfig(
            real_magic_hour=False,
            emulator=emulator,
            schedule_interval_seconds=0,
            **overrides,
        )
        stack = LocalStack(config)
        started.append(stack)
        return stack.start()

    yield start
    for stack in started:
        stack.stop()
