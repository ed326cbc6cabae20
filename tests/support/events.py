"""The AWS-shaped event builders live in cutout_dev.aws_events (shared with the benchmarks)."""

from cutout_dev.aws_events import S3_TEST_EVENT, eventbridge_object_created, s3_notification, sqs_event

__all__ = ["S3_TEST_EVENT", "eventbridge_object_created", "s3_notification", "sqs_event"]
