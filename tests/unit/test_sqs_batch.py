"""cutout.aws.sqs_batch: the partial batch response contract the SQS event source mappings rely on
(ReportBatchItemFailures), as Powertools' BatchProcessor answered it with raise_on_entire_batch_failure=False."""

from __future__ import annotations

from typing import Any

import pytest
from cutout.aws.sqs_batch import SQSRecord, process_batch

from tests.support.events import sqs_event


def _event(*bodies: str) -> dict[str, Any]:
    return sqs_event(list(bodies))


def _failing_on(*bad: str) -> Any:
    def handler(record: SQSRecord) -> str:
        if record.body in bad:
            raise RuntimeError("record failed")
        return "ok"

    return handler


def test_only_the_records_that_raised_go_back_to_the_queue() -> None:
    # given a batch of three where the middle record's handler raises
    event = _event("a", "b", "c")

    # when the batch is processed
    response = process_batch(event, None, _failing_on("b"))

    # then only that record's message id is reported, the others are acknowledged
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}


def test_a_clean_batch_answers_an_empty_failure_list() -> None:
    assert process_batch(_event("a", "b"), None, _failing_on()) == {"batchItemFailures": []}


def test_a_batch_where_every_record_failed_is_still_a_partial_response() -> None:
    # given every record failing
    event = _event("a", "b")

    # when processed, then the invocation does not raise: each record is listed, in batch order
    response = process_batch(event, None, _failing_on("a", "b"))
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [r["messageId"] for r in event["Records"]]


def test_a_base_exception_fails_the_whole_invocation() -> None:
    # given a worker killed mid-record (a BaseException, as the soak injects)
    class Killed(BaseException):
        pass

    def handler(record: SQSRecord) -> None:
        raise Killed

    # then it is not turned into a record failure: the invocation fails and the whole batch comes back
    with pytest.raises(Killed):
        process_batch(_event("a"), None, handler)


def test_an_event_without_records_is_not_a_batch() -> None:
    with pytest.raises(ValueError):
        process_batch({"Records": []}, None, _failing_on())


def test_the_record_view_reads_lambdas_sqs_record() -> None:
    # given one record as Lambda delivers it
    raw = sqs_event([{"hello": "world"}])["Records"][0]
    raw["attributes"]["ApproximateReceiveCount"] = "3"

    # when viewed
    record = SQSRecord(raw)

    # then the accessors the handlers use read Lambda's field names
    assert record.body == raw["body"]
    assert record.message_id == raw["messageId"]
    assert record.event_source_arn == raw["eventSourceARN"]
    assert record.attributes.approximate_receive_count == "3"
    assert record.raw_event is raw
