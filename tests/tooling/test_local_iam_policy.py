"""The local stack's IAM evaluator against AWS's documented policy-evaluation rules (no server needed)."""

from __future__ import annotations

import pytest

from cutout_dev.local_stack.iam.policy import Policies, PolicyError, Request
from cutout_dev.local_stack.iam.requests import dynamodb_call, s3_call, ssm_call

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"


def policies(*statements: dict[str, object]) -> Policies:
    return Policies.parse([("inline", {"Version": "2012-10-17", "Statement": list(statements)})])


def allow(action: object, resource: object, **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_nothing_is_allowed_without_a_matching_statement() -> None:
    # given a role that may read one table
    role = policies(allow("dynamodb:GetItem", TABLE))
    # then another action, another table or the table's index is refused (implicit deny)
    assert role.allows(Request("dynamodb:GetItem", TABLE))
    assert not role.allows(Request("dynamodb:PutItem", TABLE))
    assert not role.allows(Request("dynamodb:GetItem", TABLE + "-other"))
    assert not role.allows(Request("dynamodb:Query", TABLE + "/index/by-status"))


def test_wildcards_actions_case_insensitive_resources_case_sensitive() -> None:
    role = policies(allow("DynamoDB:Get*", TABLE + "/index/*"), allow("s3:GetObject", "arn:aws:s3:::b/in?/*"))
    assert role.allows(Request("dynamodb:GetItem", TABLE + "/index/by-status"))
    assert role.allows(Request("s3:GetObject", "arn:aws:s3:::b/in1/a/b.png"))
    assert not role.allows(Request("s3:GetObject", "arn:aws:s3:::b/IN1/a.png"))
    assert not role.allows(Request("s3:GetObject", "arn:aws:s3:::b/in12/a.png"))


def test_an_explicit_deny_wins_and_not_action_excludes() -> None:
    role = policies(
        allow("s3:*", "*"),
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "sqs:*", "Resource": "arn:aws:events:*"},
    )
    decision = role.decide(Request("s3:DeleteObject", "arn:aws:s3:::b/k"))
    assert not decision.allowed and decision.explicit_deny
    assert role.allows(Request("events:PutEvents", "arn:aws:events:us-east-1:1:event-bus/default"))
    assert not role.allows(Request("sqs:SendMessage", "arn:aws:events:x"))


def test_leading_keys_for_all_values_limits_items_and_is_true_without_keys() -> None:
    # given the webhook's replay guard: its own `webhook#` items only
    role = policies(
        allow(
            ["dynamodb:UpdateItem", "dynamodb:Scan"],
            TABLE,
            Condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["webhook#*"]}},
        )
    )
    ok = dynamodb_call(
        "UpdateItem", {"TableName": "jobs", "Key": {"job_id": {"S": "webhook#abc"}}}, lambda t, i: "job_id"
    )
    slot = dynamodb_call("UpdateItem", {"TableName": "jobs", "Key": {"job_id": {"S": "slot#1"}}}, lambda t, i: "job_id")
    scan = dynamodb_call("Scan", {"TableName": "jobs"}, lambda t, i: "job_id")
    assert role.allows(ok.requests[0])
    assert not role.allows(slot.requests[0])
    # AWS: ForAllValues is true when the request has no value for the key (a Scan names no partition key)
    assert role.allows(scan.requests[0])


def test_a_transaction_needs_each_items_own_action() -> None:
    call = dynamodb_call(
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "jobs", "Item": {"job_id": {"S": "a" * 32}}}},
                {"ConditionCheck": {"TableName": "jobs", "Key": {"job_id": {"S": "slot#2"}}}},
            ]
        },
        lambda t, i: "job_id",
    )
    assert [r.action for r in call.requests] == ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
    role = policies(allow("dynamodb:PutItem", TABLE))
    assert role.allows(call.requests[0]) and not role.allows(call.requests[1])


def test_s3_requests_map_to_their_documented_actions() -> None:
    def action(method: str, path: str, query: dict[str, list[str]] | None = None, **headers: str) -> list[str]:
        return [r.action for r in s3_call(method, path, query or {}, headers).requests]

    assert action("HEAD", "/b/in/a%20b.png") == ["s3:GetObject"]
    assert action("GET", "/b/in/a.png", {"versionId": ["1"]}) == ["s3:GetObjectVersion"]
    assert action("PUT", "/b/out/a.png") == ["s3:PutObject"]
    assert action("POST", "/b/out/a.png", {"uploads": [""]}) == ["s3:PutObject"]
    assert action("DELETE", "/b/out/a.png", {"uploadId": ["u"]}) == ["s3:AbortMultipartUpload"]
    assert action("GET", "/b", {"list-type": ["2"], "prefix": ["in/"]}) == ["s3:ListBucket"]
    assert action("PUT", "/b/out/a.png", **{"x-amz-copy-source": "/b/in/a.png"}) == ["s3:PutObject", "s3:GetObject"]
    assert s3_call("HEAD", "/b/in/a%20b.png", {}, {}).requests[0].resource == "arn:aws:s3:::b/in/a b.png"
    # a call the local IAM cannot map is refused, not waved through
    assert s3_call("POST", "/b/k", {"select": [""]}, {}).unmapped


def test_a_policy_with_a_condition_it_cannot_fill_in_does_not_load() -> None:
    with pytest.raises(PolicyError, match="aws:SourceIp"):
        policies(allow("s3:GetObject", "*", Condition={"StringEquals": {"aws:SourceIp": "10.0.0.0/8"}}))
    with pytest.raises(PolicyError, match="not evaluated"):
        policies(allow("s3:GetObject", "*", Condition={"DateGreaterThan": {"s3:prefix": "x"}}))


def test_an_ssm_parameter_is_authorised_by_its_arn_and_other_ssm_calls_are_unmapped() -> None:
    # given a role that may read the stack's presets parameter (a hierarchical name)
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/cutout/cutout/presets"
    role = policies(allow("ssm:GetParameter", arn))
    # when the function reads it by name / then the request names that ARN, and only it is allowed
    (request,) = ssm_call("GetParameter", {"Name": "/cutout/cutout/presets"}).requests
    assert request == Request("ssm:GetParameter", arn)
    assert role.allows(request)
    (other,) = ssm_call("GetParameter", {"Name": "/cutout/other"}).requests
    assert not role.allows(other)
    # ... and a write, or a call the local IAM cannot describe, is refused as unmapped (fail closed)
    assert ssm_call("PutParameter", {"Name": "/cutout/cutout/presets"}).unmapped
    assert ssm_call("GetParameter", {}).unmapped
