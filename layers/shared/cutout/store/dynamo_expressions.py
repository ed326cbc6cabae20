"""DynamoDB update and condition expressions with placeholders (names and values never appear in the text).

Hand-written because boto3's `Attr`/`Key` condition builders serve the resource API only; the functions use the
low-level client (one client per process, cold start), whose expressions are strings.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from cutout.domain.job import reached_attribute
from cutout.domain.models import TERMINAL, JobStatus, iso

_serializer = TypeSerializer()

# Terminal records expire from the table after this long (TTL attribute `expires_at`).
TERMINAL_RETENTION = timedelta(days=90)


class Expression:
    """Placeholders for one update: attribute names and values never appear in the expression text."""

    # A plain class, not a @dataclass: a mutable builder needs no generated methods, and a dataclass costs ~0.5 ms
    # of cold start to generate them.
    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _serializer.serialize(value)
        return placeholder

    def equals(self, attribute: str, value: Any) -> str:
        return f"{self.name(attribute)} = {self.value(value)}"

    def status_in(self, statuses: Collection[JobStatus]) -> str:
        return f"{self.name('status')} IN ({', '.join(self.value(s.value) for s in sorted(statuses))})"

    def project_is(self, project_id: str, required: bool) -> str:
        match = self.equals("project_id", project_id)
        return match if required else f"(attribute_not_exists({self.name('project_id')}) OR {match})"

    def error_code_if_error(self, code: str) -> str:
        status, error_code = self.name("status"), self.name("error_code")
        return f"({status} <> {self.value(JobStatus.ERROR.value)} OR {error_code} = {self.value(code)})"


def update_expression(
    expr: Expression,
    to: JobStatus | None,
    set_: dict[str, Any],
    remove: tuple[str, ...],
    now: datetime,
    *,
    stamp: bool,
    keep: frozenset[str] = frozenset(),
) -> str:
    """SET the given attributes (None values are left out); a status change also stamps `<status>_at` once and,
    for a terminal status, the TTL. Attributes named in `keep` are set only where the record lacks them
    (`if_not_exists`: an insert gets them, an existing record keeps its own)."""
    values = {k: v for k, v in set_.items() if v is not None}
    kept = {k: values.pop(k) for k in keep if k in values}
    if to is not None:
        values["status"] = to.value
        if to in TERMINAL:
            values["expires_at"] = int((now + TERMINAL_RETENTION).timestamp())
    if stamp:
        values["updated_at"] = iso(now)
    sets = [expr.equals(k, v) for k, v in values.items()]
    for k, v in kept.items():
        sets.append(f"{expr.name(k)} = if_not_exists({expr.name(k)}, {expr.value(v)})")
    if to is not None:
        at = expr.name(reached_attribute(to))
        sets.append(f"{at} = if_not_exists({at}, {expr.value(iso(now))})")
    update = "SET " + ", ".join(sets) if sets else ""
    removed = [expr.name(a) for a in remove if a not in values and a not in kept]
    return (update + (" REMOVE " + ", ".join(removed) if removed else "")).strip()
