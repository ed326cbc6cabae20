"""One rendition's outcome as the job record keeps it (`Job.renditions`: preset name -> this, as a map).

Keyed by preset on the record, so a redelivered completion or a rebuild replaces an entry rather than adding one.
"""

# No `from __future__ import annotations`: a NamedTuple compiles string annotations at import (see job.py).
from collections.abc import Mapping
from typing import Any, NamedTuple

OK = "ok"
FAILED = "failed"


class Rendition(NamedTuple):
    status: str  # "ok" or "failed"
    rendered_at: str
    key: str | None = None
    bytes: int | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    reason: str | None = None  # a failure's code and message ("too_large: the cutout is ...")

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_record(self) -> dict[str, Any]:
        return {k: v for k, v in self._asdict().items() if v is not None}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Rendition":
        return cls(**{k: record[k] for k in cls._fields if k in record})
