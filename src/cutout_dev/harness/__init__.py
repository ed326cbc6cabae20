"""What the soak and the flood share: the upload plan and the wait for its end, fault injection into a local
stack, waiting for quiet, the DLQs' contents, the reconciliation of uploads against job records and the emulator's
creates and credits as named checks, and admission's slot accounting."""

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
from cutout_dev.harness.uploads import (
    Plan,
    Waiting,
    check_forced_sweep,
    end_stuck_jobs,
    plan_uploads,
    upload_records,
    wait_terminal,
)

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
    "Plan",
    "UploadRecord",
    "Waiting",
    "WorkerKilled",
    "check_forced_sweep",
    "clock_ahead",
    "dlq_by_job",
    "dlq_contents",
    "dlq_job_id",
    "end_stuck_jobs",
    "explain",
    "held_slots",
    "image",
    "inject",
    "known_reason",
    "plan_uploads",
    "reconcile",
    "record",
    "run_sweeper",
    "say",
    "short_lease",
    "slot_repairs",
    "upload_records",
    "wait_quiet",
    "wait_terminal",
]
