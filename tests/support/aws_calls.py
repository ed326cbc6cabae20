"""Counting the AWS calls code makes, whatever session its clients come from (the functions' clients run under
role sessions of their own, tests/support/roles.py): every botocore client's API call passes `_make_api_call`."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any
from unittest import mock

from botocore.client import BaseClient

_make_api_call = BaseClient._make_api_call


@contextlib.contextmanager
def count_calls() -> Iterator[Counter[str]]:
    """`service.Operation` → calls made inside the block, by any thread (e.g. `dynamodb.GetItem`)."""
    calls: Counter[str] = Counter()

    def counted(client: BaseClient, operation: str, params: Any) -> Any:
        calls[f"{client.meta.service_model.endpoint_prefix}.{operation}"] += 1
        return _make_api_call(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", counted):
        yield calls
