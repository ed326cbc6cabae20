"""The local stack refuses at deploy what AWS refuses, with AWS's message, as CloudFormation's failed create does.

moto alone accepts a reservation an account cannot give and an event pattern with an empty object; the local stack
runs the deploy rules (cutout_dev.local_stack.deploy_rules) on the template before creating anything.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from cutout_dev.local_stack import LocalStack, LocalStackConfig
from cutout_dev.local_stack.deploy_rules import DeployRefused


def test_a_webhook_reservation_a_new_account_cannot_give_is_refused() -> None:
    # given the real template with a webhook reservation of 3, on an account whose quota is a new account's 10
    stack = LocalStack(
        LocalStackConfig(parameters={"WebhookReservedConcurrency": "3"}, account_concurrency_quota=10),
        schedule_interval_seconds=0,
    )
    # when it deploys, then it is refused with Lambda's message, and nothing was created
    with pytest.raises(DeployRefused) as refused:
        stack.start()
    assert str(refused.value).splitlines()[0] == (
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
        "below its minimum value of [10]."
    )
    assert [v.resource for v in refused.value.violations] == ["WebhookFunction"]
    assert stack.resources is None


def test_a_refused_deploy_leaves_the_process_modules_alone() -> None:
    # given the domain's settings module imported by this process (as the integration tests' loader does)
    import cutout.runtime.config

    before = sys.modules["cutout.runtime.config"]
    stack = LocalStack(LocalStackConfig(parameters={"WebhookReservedConcurrency": "3"}, account_concurrency_quota=10))
    # when the stack is refused before any function was imported
    with pytest.raises(DeployRefused):
        stack.start()
    # then the process keeps the very same module (a new one would hold caches nobody clears)
    assert sys.modules["cutout.runtime.config"] is before is cutout.runtime.config


# The ingest rule as it was: with no prefix and no output prefix to exclude, the key filter resolved to NoValue
# inside `object`, leaving `"object": {}`.
EMPTY_OBJECT_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  InputPrefix:
    Type: String
    Default: ""
Conditions:
  HasInputPrefix: !Not [!Equals [!Ref InputPrefix, ""]]
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source: [aws.s3]
        detail:
          object:
            key: !If [HasInputPrefix, [{ prefix: !Ref InputPrefix }], !Ref AWS::NoValue]
      Targets:
        - Id: queue
          Arn: !GetAtt Queue.Arn
"""


def test_an_event_pattern_with_an_empty_object_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(EMPTY_OBJECT_TEMPLATE), encoding="utf-8")
    stack = LocalStack(LocalStackConfig(template=template, stack_name="patterns", schedule_interval_seconds=0))
    with pytest.raises(DeployRefused) as refused:
        stack.start()
    assert [(v.resource, v.message) for v in refused.value.violations] == [
        ("Rule", "Event pattern is not valid. Reason: Empty objects are not allowed")
    ]


def test_the_whole_bucket_with_cutouts_elsewhere_deploys_with_the_backgrounds_filtered_out() -> None:
    # given the real template watching the whole bucket and writing the cutouts to another bucket
    parameters = {"InputPrefix": "", "OutputBucketName": "cutout-local-elsewhere"}
    with LocalStack(LocalStackConfig(parameters=parameters, schedule_interval_seconds=0)) as stack:
        # then the ingest rule matches every object of the images bucket but the backgrounds
        events = stack.client("events")
        (rule,) = [r for r in events.list_rules()["Rules"] if "aws.s3" in r.get("EventPattern", "")]
        detail = json.loads(rule["EventPattern"])["detail"]
        assert detail == {
            "bucket": {"name": [stack.endpoints.bucket]},
            "object": {"key": [{"anything-but": {"prefix": "backgrounds/"}}]},
        }
