"""``cutout redrive DLQ``: move a DLQ's messages back to the queue that feeds it, after fixing the cause.

On AWS this is SQS's own message move task (StartMessageMoveTask: server side, rate-limited by SQS, resumable,
visible in the console). moto has no message move tasks, so on the local stack the messages are moved by
receive → send → delete (the local stack's ``redrive_messages``), which is what the task does.
"""

from __future__ import annotations

import argparse
from typing import Any

from cutout_dev.ops.output import EXIT_OK, Output, table
from cutout_dev.ops.target import QUEUE_PAIRS, StackTarget, TargetError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "redrive",
        help="move a DLQ's messages back to its source queue",
        description="Move a DLQ's messages back to its source queue (SQS StartMessageMoveTask on AWS).",
    )
    parser.add_argument("dlq", choices=sorted(QUEUE_PAIRS), help="which dead-letter queue")
    parser.add_argument(
        "--max-per-second", type=int, default=None, help="AWS: messages moved per second (SQS default: optimised)"
    )
    parser.set_defaults(run=run)


def queue_arn(target: StackTarget, url: str, arn: str | None) -> str:
    """The ARN from the stack's outputs, or asked from SQS for stacks deployed before the ARN outputs."""
    if arn:
        return arn
    attrs = target.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attrs["QueueArn"])


def run(args: argparse.Namespace, target: StackTarget) -> int:
    out = Output.from_args(args)
    dlq = target.queue(args.dlq)
    source = target.source_queue(args.dlq)
    result: dict[str, Any] = {"dlq": dlq.name, "destination": source.name}
    if target.local:
        from cutout_dev.local_stack.stack import redrive_messages

        result["moved"] = redrive_messages(target.client("sqs"), dlq.url, source.url)
        result["task_handle"] = None
    else:
        kwargs: dict[str, Any] = {
            "SourceArn": queue_arn(target, dlq.url, dlq.arn),
            "DestinationArn": queue_arn(target, source.url, source.arn),
        }
        if args.max_per_second:
            kwargs["MaxNumberOfMessagesPerSecond"] = args.max_per_second
        sqs = target.client("sqs")
        try:
            handle = sqs.start_message_move_task(**kwargs)["TaskHandle"]
        except sqs.exceptions.ClientError as exc:
            raise TargetError(f"redrive {dlq.name}: {exc.response.get('Error', {}).get('Message', exc)}") from exc
        result["moved"] = None  # the task runs on in SQS; see list-message-move-tasks
        result["task_handle"] = handle

    def draw(console: Any) -> None:
        if result["task_handle"] is None:
            console.print(f"moved {result['moved']} message(s) from {dlq.name} to {source.name}")
        else:
            console.print(table(None, ("from", "to", "task"), [(dlq.name, source.name, result["task_handle"])]))
            console.print("SQS is moving the messages; progress:")
            console.print(f"  aws sqs list-message-move-tasks --source-arn {kwargs['SourceArn']}")

    out.emit(result, draw)
    return EXIT_OK
