"""The local stack's DynamoDB transactions (cutout_dev.local_stack.aws._transact_items_only): all or nothing, as
DynamoDB's, while backing up only the items a transaction names (moto copies whole tables)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Aws


def _items(aws: Aws) -> dict[str, dict[str, Any]]:
    scan = aws.client("dynamodb").scan(TableName=aws.table)["Items"]
    return {i["job_id"]["S"]: i for i in scan}


def _transact(aws: Aws, put_condition: str, update_condition: str) -> None:
    aws.client("dynamodb").transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": aws.table,
                    "Item": {"job_id": {"S": "slot#0"}, "holder": {"S": "j"}},
                    "ConditionExpression": put_condition,
                }
            },
            {
                "Update": {
                    "TableName": aws.table,
                    "Key": {"job_id": {"S": "j"}},
                    "UpdateExpression": "SET n = :n",
                    "ConditionExpression": update_condition,
                    "ExpressionAttributeValues": {":n": {"N": "2"}, ":one": {"N": "1"}},
                }
            },
        ]
    )


@pytest.mark.unrestricted_aws("the test plays DynamoDB's client itself, for no function")
@pytest.mark.parametrize(
    ("put_condition", "update_condition", "codes"),
    [
        # the put goes through first and the update is refused: the put is undone
        (
            "attribute_not_exists(job_id)",
            "n = :one AND attribute_not_exists(job_id)",
            ["None", "ConditionalCheckFailed"],
        ),
        # the put is refused and the update would go through: the update is not applied
        ("attribute_exists(job_id)", "n = :one", ["ConditionalCheckFailed", "None"]),
    ],
)
def test_a_cancelled_transaction_leaves_every_item_as_it_was(
    aws: Aws, put_condition: str, update_condition: str, codes: list[str]
) -> None:
    # given: a job item, and no slot item
    aws.client("dynamodb").put_item(TableName=aws.table, Item={"job_id": {"S": "j"}, "n": {"N": "1"}})
    before = _items(aws)

    # when: a transaction one of whose conditions refuses
    with pytest.raises(ClientError) as refused:
        _transact(aws, put_condition, update_condition)

    # then: cancelled with a reason per item, and nothing of it written
    assert [r["Code"] for r in refused.value.response["CancellationReasons"]] == codes
    assert _items(aws) == before


@pytest.mark.unrestricted_aws("the test plays DynamoDB's client itself, for no function")
def test_a_transaction_whose_conditions_hold_writes_both_items(aws: Aws) -> None:
    aws.client("dynamodb").put_item(TableName=aws.table, Item={"job_id": {"S": "j"}, "n": {"N": "1"}})
    _transact(aws, "attribute_not_exists(job_id)", "n = :one")
    items = _items(aws)
    assert items["slot#0"]["holder"] == {"S": "j"}
    assert items["j"]["n"] == {"N": "2"}
