"""The CLI's small truths, without a stack: what ``--prefix`` means, what a query over wrapped rows says, what a
command of the dev tooling says when only the operator's CLI is installed, whose fault a rejection is."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from cutout.domain.models import CONFIGURATION_REJECTIONS, JobStatus, is_retryable

from cutout_dev import cli
from cutout_dev.ops.output import Output
from cutout_dev.ops.records import fix_for
from cutout_dev.ops.target import StackTarget


def _target(input_prefix: str) -> StackTarget:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    outputs = {"BucketName": "images", "InputS3Uri": f"s3://images/{input_prefix}"}
    return StackTarget("s", session, None, False, outputs, {"InputPrefix": input_prefix})


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        (None, "incoming/"),
        ("", "incoming/"),
        ("shop/", "incoming/shop/"),
        ("shop", "incoming/shop"),
        ("/shop/", "incoming/shop/"),
        ("incoming/shop/", "incoming/shop/"),  # already under the input prefix: as it is
        ("incoming/", "incoming/"),
        ("s3://images/incoming/a/", "incoming/a/"),
    ],
)
def test_prefix_is_relative_to_the_input_prefix_unless_it_already_starts_with_it(given: str | None, meant: str) -> None:
    assert _target("incoming/").key_prefix(given) == meant


def test_with_an_empty_input_prefix_a_prefix_is_taken_as_it_is() -> None:
    assert _target("").key_prefix("shop/") == "shop/"


def _emit(query: str, doc: dict[str, object]) -> tuple[object, str]:
    out, err = io.StringIO(), io.StringIO()
    Output(format="json", query=query, stream=out, err=err).emit(doc, lambda console: None)
    return json.loads(out.getvalue()), err.getvalue()


def test_a_query_written_for_bare_rows_says_the_rows_are_wrapped() -> None:
    doc = {"jobs": [{"job_id": "a", "status": "complete"}], "count": 1, "limit": 50}

    wrong, hint = _emit("[].{id: job_id}", doc)
    right, quiet = _emit("jobs[].{id: job_id}", doc)

    assert wrong is None
    assert hint.strip() == 'cutout: --query: the JSON is an object ({"jobs": ...}): start from a key, e.g. jobs[]'
    assert (right, quiet) == ([{"id": "a"}], "")


def test_a_command_of_the_dev_tooling_names_what_to_install_in_one_line() -> None:
    missing = ModuleNotFoundError("No module named 'moto'", name="moto")
    assert cli._missing_dev_tool(missing) == (
        "this command needs the dev tooling (moto is not installed): pip install 'cutout[dev]' "
        "(from a clone: pip install -e '.[dev]', or make install)"
    )
    assert cli._missing_dev_tool(ModuleNotFoundError("No module named 'boto3'", name="boto3")) is None


@pytest.mark.parametrize("code", sorted(CONFIGURATION_REJECTIONS))
def test_a_rejection_the_configuration_caused_is_retryable_and_says_how(code: str) -> None:
    assert is_retryable(JobStatus.REJECTED, code)
    assert fix_for({"job_id": "j", "status": "rejected", "error_code": code}) == (
        "caused by the configuration, not the file: fix it (cutout doctor), then cutout retry j"
    )


@pytest.mark.parametrize("code", ["not_an_image", "too_large", "empty_object", "key_dot_segment", "http_422"])
def test_a_rejection_the_file_caused_is_final(code: str) -> None:
    assert not is_retryable(JobStatus.REJECTED, code)
    assert str(fix_for({"job_id": "j", "status": "rejected", "error_code": code})).startswith("caused by the file")
