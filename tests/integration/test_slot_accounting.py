"""The soak's and the flood's slot accounting read what admission control really stores and logs: the slot items
the domain writes, and the repair lines and SlotsRepaired metric reconciliation emits (moto server over HTTP)."""

from __future__ import annotations

import contextlib
import io
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from boto3.dynamodb.types import TypeSerializer
from cutout.admission.control import Admission
from cutout.admission.reconcile import Reconciler
from cutout.admission.slots import Slot
from cutout.domain.job import Job
from cutout.domain.models import JobStatus, iso
from cutout.runtime.observability import logger as cutout_logger
from cutout.runtime.observability import metrics

from cutout_dev.harness.slots import explain, held_slots, known_reason, slot_repairs
from tests.conftest import Aws
from tests.support.roles import function_role


class Clock:
    """An injected clock moved by hand (no sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _put_job(aws: Aws, job_id: str, status: str, slot: str, at: datetime) -> None:
    record = {
        "job_id": job_id,
        "status": status,
        "source_bucket": aws.bucket,
        "source_key": f"incoming/{job_id}.png",
        "created_at": iso(at),
        "updated_at": iso(at),
        "slot": slot,
    }
    ser = TypeSerializer()
    aws.client("dynamodb").put_item(TableName=aws.table, Item={k: ser.serialize(v) for k, v in record.items()})


def test_held_slots_and_repairs_are_read_as_the_domain_writes_them(aws: Aws, tmp_path: Path) -> None:
    # given: two slots taken through the domain's own admission; one holder is rendering, the other has no record
    clock = Clock()
    ddb = aws.client("dynamodb")
    admission = Admission(aws.table, 3, client=ddb, clock=clock)
    with function_role("submit"):
        rendering = admission.acquire("job-rendering")
        leaked = admission.acquire("job-gone")
    assert rendering is not None and leaked is not None
    _put_job(aws, "job-rendering", "rendering", rendering.slot_id, clock.now)

    # then: both are seen held, by their holders
    assert held_slots(ddb, aws.table, 3) == {rendering.slot_id: "job-rendering", leaked.slot_id: "job-gone"}

    # when: reconciliation runs past the grace, its log lines and metrics going to a function log
    log = tmp_path / "functions.log"
    handler = logging.FileHandler(log, encoding="utf-8")
    handler.setFormatter(cutout_logger.registered_formatter)
    logging.getLogger("cutout").addHandler(handler)
    emf = io.StringIO()
    metrics.clear_metrics()
    try:
        clock.now += timedelta(minutes=5)
        with contextlib.redirect_stdout(emf), function_role("sweeper"):
            admission.reconcile()
            metrics.flush_metrics()
    finally:
        logging.getLogger("cutout").removeHandler(handler)
        handler.close()
        metrics.clear_metrics()
    with log.open("a", encoding="utf-8") as out:
        out.write(emf.getvalue())
    repairs = slot_repairs(log)

    # then: the leaked slot's repair is read with its reason, the metric agrees, and only the rendering job holds one
    assert repairs["repairs"] == [{"slot": leaked.slot_id, "job_id": "job-gone", "reason": "holder_missing"}]
    assert repairs["reasons"] == {"holder_missing": 1}
    assert repairs["repaired_metric_sum"] == 1
    assert known_reason("holder_missing")
    assert held_slots(ddb, aws.table, 3) == {rendering.slot_id: "job-rendering"}


def _reasons_reconciliation_gives() -> dict[str, str | None]:
    """What the domain's own `leak_reason` answers for a slot held past every bound by a holder in each state."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    long_ago = iso(now - timedelta(hours=1))
    reconciler = Reconciler(
        None,  # type: ignore[arg-type]  # leak_reason reads only the slot, the record and the clock's value
        grace=timedelta(seconds=60),
        unknown_outcome_hold=timedelta(seconds=5),
        submit_lease=timedelta(seconds=120),
    )
    slot = Slot("slot#0", "job-1", long_ago)
    base = {"job_id": "job-1", "source_bucket": "b", "source_key": "k", "created_at": long_ago, "updated_at": long_ago}
    given: dict[str, str | None] = {"no record": reconciler.leak_reason(slot, None, now)}
    for status in JobStatus:
        record = {**base, "status": status.value, "slot": "slot#0"}
        given[status.value] = reconciler.leak_reason(slot, Job.from_record(record), now)
    other = {**base, "status": "rendering", "slot": "slot#1"}
    given["holds another slot"] = reconciler.leak_reason(slot, Job.from_record(other), now)
    return given


def test_known_reasons_are_exactly_the_ones_reconciliation_gives() -> None:
    # given: the reason the domain gives for each kind of holder (None: it keeps its slot)
    given = _reasons_reconciliation_gives()
    emitted = {r for r in given.values() if r is not None}
    # then: each is known and explained, and a queued / rendering / retry-pending holder is never repaired
    assert emitted >= {"holder_missing", "holder_waiting", "holder_complete", "unknown_outcome_past_bound"}
    for reason in emitted:
        assert known_reason(reason), reason
        assert "not a reason" not in explain(reason)
    assert given["queued"] is None and given["rendering"] is None
    # and nothing it cannot give passes as known: a holder_ string of a state that keeps its slot, or a new word
    for status in ("queued", "rendering", "retry_pending", ""):
        assert not known_reason(f"holder_{status}"), status
    assert not known_reason("something_new")
    assert "not a reason" in explain("something_new")


def test_no_function_log_means_no_reading_rather_than_no_repairs(tmp_path: Path) -> None:
    assert slot_repairs(None) == {"log": None}
    assert slot_repairs(tmp_path / "missing.log") == {"log": None}
