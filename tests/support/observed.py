"""What a test can observe from outside a handler: EMF metrics on stdout, structured log lines, an SQS queue
driven the way Lambda's event-source mapping drives it (delete on success, keep listed failures)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cutout_dev.local_stack.sqs_poller import to_lambda_record


def _emf_documents(stdout: str) -> Iterator[dict[str, Any]]:
    """The EMF blobs Powertools printed (one JSON document per flush), skipping every other line."""
    for raw in stdout.splitlines():
        line = raw.strip()
        if line.startswith("{") and '"_aws"' in line:
            yield json.loads(line)


def emitted_metrics(stdout: str) -> dict[str, float]:
    """Sum every metric in the EMF blobs Powertools printed."""
    totals: dict[str, float] = {}
    for doc in _emf_documents(stdout):
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = doc.get(metric["Name"], 0)
                values = value if isinstance(value, list) else [value]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(float(v) for v in values)
    return totals


def emf_dimensions(stdout: str, metric: str) -> list[dict[str, str]]:
    """The dimension sets a metric was published with (what a CloudWatch alarm must match)."""
    out: list[dict[str, str]] = []
    for doc in _emf_documents(stdout):
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            if any(m["Name"] == metric for m in directive["Metrics"]):
                out.extend({name: doc[name] for name in dims} for dims in directive["Dimensions"])
                out.append({"Namespace": directive["Namespace"]})
    return out


def structured_logs(lines: list[str]) -> list[dict[str, Any]]:
    """The JSON log lines (Powertools' format) among what the log collector saw."""
    out: list[dict[str, Any]] = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def find_log(lines: list[str], **fields: Any) -> dict[str, Any] | None:
    """The first structured log line holding every given field with the given value."""
    for doc in structured_logs(lines):
        if all(doc.get(k) == v for k, v in fields.items()):
            return doc
    return None


@dataclass
class QueuePair:
    """A queue with its dead-letter queue, consumed like a Lambda SQS event source (ReportBatchItemFailures)."""

    sqs: Any
    url: str
    arn: str
    dlq_url: str

    @classmethod
    def create(cls, sqs: Any, name: str, max_receive_count: int = 5) -> QueuePair:
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
        url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return cls(sqs=sqs, url=url, arn=arn, dlq_url=dlq_url)

    def send(self, body: dict[str, Any] | str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body if isinstance(body, str) else json.dumps(body))

    def counts(self, url: str | None = None) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {
            "visible": int(attrs["ApproximateNumberOfMessages"]),
            "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"]),
        }

    def dead_letters(self) -> int:
        return self.counts(self.dlq_url)["visible"]

    def deliver(self, handler: Callable[[dict[str, Any]], Any]) -> dict[str, Any] | None:
        """One event-source-mapping round: receive a batch, invoke, delete what did not fail.

        Failed messages are made visible again at once (a visibility timeout of 0) so the next round sees them,
        with one more receive counted towards the DLQ, as SQS counts them."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return None
        event = {"Records": [to_lambda_record(m, self.arn) for m in messages]}
        result: dict[str, Any] = handler(event)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for m in messages:
            if m["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return result
