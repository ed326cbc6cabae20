"""Counter items in the jobs table: the daily credit budget (`budget#<day>`) and webhook replay marks
(`webhook#<signature>`). Their ids contain `#`, which a job id never does, so readers tell them apart."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from cutout.aws import aws_clients
from cutout.domain.models import iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def is_counter(item_id: str) -> bool:
    return "#" in item_id


class Counters:
    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        return self._client or aws_clients.dynamodb()

    def add(self, counter_id: str, amount: int, limit: int, expires: datetime) -> bool:
        """Atomically add `amount` unless that would pass `limit` (0 = no limit). False when it would."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"job_id": {"S": counter_id}},
            "UpdateExpression": "ADD credits :a SET expires_at = :e",
            "ExpressionAttributeValues": {
                ":a": {"N": str(amount)},
                ":e": {"N": str(int(expires.timestamp()))},
            },
        }
        if limit > 0:
            kwargs["ConditionExpression"] = "attribute_not_exists(credits) OR credits <= :room"
            kwargs["ExpressionAttributeValues"][":room"] = {"N": str(limit - amount)}
        try:
            self.client.update_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def stamp(self, item_id: str, now: datetime, expires: datetime) -> None:
        """Set `seen_at` (ISO) on `item_id`: a time several writers note (the last webhook delivery)."""
        self.client.update_item(
            TableName=self.table,
            Key={"job_id": {"S": item_id}},
            UpdateExpression="SET seen_at = :s, expires_at = :e",
            ExpressionAttributeValues={
                ":s": {"S": iso(now)},
                ":e": {"N": str(int(expires.timestamp()))},
            },
        )

    def delete(self, counter_id: str) -> None:
        self.client.delete_item(TableName=self.table, Key={"job_id": {"S": counter_id}})
