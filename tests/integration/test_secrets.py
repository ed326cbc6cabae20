"""cutout.aws.secrets over moto server: one read per max age, a forced re-read for rotation, failures named."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cutout.aws import secrets
from cutout.domain.errors import SecretUnavailable

from tests.conftest import API_KEY, Aws

# The key's readers (submit, poll, finalize, sweeper) may read only the stack's own secret; the submit's role here.
pytestmark = pytest.mark.function_role("submit")


@pytest.fixture
def fresh_cache(aws: Aws) -> Iterator[Aws]:
    secrets.reset()
    yield aws
    secrets.reset()


def test_a_secret_is_read_once_and_reread_when_forced(fresh_cache: Aws) -> None:
    # given the key read once
    aws = fresh_cache
    assert secrets.api_key(aws.api_key_secret) == API_KEY

    # when it is rotated in Secrets Manager
    aws.client("secretsmanager").put_secret_value(SecretId=aws.api_key_secret, SecretString="rotated-key")

    # then the cached value serves until a forced read (a 401 from Magic Hour) picks the new one up
    assert secrets.api_key(aws.api_key_secret) == API_KEY
    assert secrets.api_key(aws.api_key_secret, force=True) == "rotated-key"
    assert secrets.api_key(aws.api_key_secret) == "rotated-key"


def test_a_json_secret_yields_its_obvious_field(fresh_cache: Aws) -> None:
    aws = fresh_cache
    aws.client("secretsmanager").put_secret_value(
        SecretId=aws.api_key_secret, SecretString=json.dumps({"api_key": "k-1"})
    )
    assert secrets.api_key(aws.api_key_secret) == "k-1"


def test_a_deleted_or_unnamed_secret_is_secret_unavailable(fresh_cache: Aws) -> None:
    # given the stack's secret deleted (CloudFormation deletes it at once on `sam delete`), and no secret named
    aws = fresh_cache
    aws.client("secretsmanager").delete_secret(SecretId=aws.api_key_secret, ForceDeleteWithoutRecovery=True)

    # then neither can be read, and each says so as SecretUnavailable
    for secret_id in (aws.api_key_secret, ""):
        with pytest.raises(SecretUnavailable):
            secrets.api_key(secret_id)


@pytest.mark.iam_refusals_expected  # the refusal is the case: a secret the role may not read
def test_a_secret_the_role_may_not_read_is_secret_unavailable(fresh_cache: Aws) -> None:
    fresh_cache.client("secretsmanager").create_secret(Name="someone-elses-key", SecretString="k-2")
    with pytest.raises(SecretUnavailable):
        secrets.api_key("someone-elses-key")
