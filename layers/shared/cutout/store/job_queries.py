"""Reads of the jobs table: a job by id, by its Magic Hour project, and by status (the GSIs).

The base of `JobStore` (job_store.py), which adds the transitions; reads change nothing, so they live apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from cutout.aws import aws_clients
from cutout.domain.job import Job
from cutout.domain.models import Clock, JobStatus, iso, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BY_STATUS_INDEX = "by-status"
BY_PROJECT_INDEX = "by-project"


class JobQueries:
    def __init__(self, table: str, client: DynamoDBClient | None = None, *, clock: Clock = utc_now) -> None:
        self.table = table
        self._client = client
        self.clock = clock

    @property
    def client(self) -> DynamoDBClient:
        return self._client or aws_clients.dynamodb()

    # ----- reads -------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        resp = self.client.get_item(TableName=self.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
        item = resp.get("Item")
        return Job.from_item(item) if item else None

    def job_id_for_project(self, project_id: str) -> str | None:
        resp = self.client.query(
            TableName=self.table,
            IndexName=BY_PROJECT_INDEX,
            KeyConditionExpression="project_id = :p",
            ExpressionAttributeValues={":p": {"S": project_id}},
            Limit=2,
        )
        items = resp.get("Items", [])
        return str(items[0]["job_id"]["S"]) if items else None

    def list_by_status(
        self, status: JobStatus, created_before: datetime | None = None, *, created_after: datetime | None = None
    ) -> list[Job]:
        expr = "#s = :s"
        values: dict[str, Any] = {":s": {"S": status.value}}
        if created_before is not None and created_after is not None:
            expr += " AND created_at BETWEEN :a AND :c"
            values[":a"] = {"S": iso(created_after)}
            values[":c"] = {"S": iso(created_before)}
        elif created_before is not None:
            expr += " AND created_at < :c"
            values[":c"] = {"S": iso(created_before)}
        elif created_after is not None:
            expr += " AND created_at > :a"
            values[":a"] = {"S": iso(created_after)}
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table,
            IndexName=BY_STATUS_INDEX,
            KeyConditionExpression=expr,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )
        return [Job.from_item(i) for page in pages for i in page.get("Items", [])]
