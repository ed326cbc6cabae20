"""cutout.aws.secrets over moto server: one read per max age, a forced re-read for rotation, failures named."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cutout.aws import secrets
from cutout.domain.errors import SecretUnavailable

from tests.conftest import API_KEY, Aws


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
    fresh_cache.client("secretsmanager").create_secret(Name="json-key", SecretString=json.dumps({"api_key": "k-1"}))
    assert secrets.api_key("json-key") == "k-1"


@pytest.mark.parametrize("secret_id", ["does-not-exist", ""])
def test_an_unreadable_secret_is_secret_unavailable(fresh_cache: Aws, secret_id: str) -> None:
    with pytest.raises(SecretUnavailable):
        secrets.api_key(secret_id)
