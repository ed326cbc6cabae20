"""What the soak and the flood share: fault injection into a local stack, waiting for quiet, the DLQs' contents,
the reconciliation of uploads against job records and the emulator's creates and credits as named checks, and
admission's slot accounting."""

from cutout_dev.harness.checks import CheckResult, record
from cutout_dev.harness.dlq import dlq_by_job, dlq_contents, dlq_job_id
from cutout_dev.harness.faults import (
    INGEST_QUEUE,
    LEASE_READERS,
    SUBMIT,
    SWEEPER,
    FaultSettings,
    Injected,
    UploadRecord,
    WorkerKilled,
    clock_ahead,
    inject,
    run_sweeper,
    short_lease,
)
from cutout_dev.harness.images import NAMES, image
from cutout_dev.harness.quiet import say, wait_quiet
from cutout_dev.harness.reconcile import RECORD_FIELDS, reconcile
from cutout_dev.harness.slots import explain, held_slots, known_reason, slot_repairs

__all__ = [
    "INGEST_QUEUE",
    "LEASE_READERS",
    "NAMES",
    "RECORD_FIELDS",
    "SUBMIT",
    "SWEEPER",
    "CheckResult",
    "FaultSettings",
    "Injected",
    "UploadRecord",
    "WorkerKilled",
    "clock_ahead",
    "dlq_by_job",
    "dlq_contents",
    "dlq_job_id",
    "explain",
    "held_slots",
    "image",
    "inject",
    "known_reason",
    "reconcile",
    "record",
    "run_sweeper",
    "say",
    "short_lease",
    "slot_repairs",
    "wait_quiet",
]
