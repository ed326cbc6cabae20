"""What the use cases (submit, finalize, poll, sweep, webhook) work with, and how it is built from the settings.

The use cases hold these, given in their constructors; the functions' `configure` builds them once at cold start
(the seam where the local stack, the soak and tests inject a clock, a store or other settings). Magic Hour's
client reads its secret on first use, so building it costs no call.

Two bundles, because the webhook ends no job: `Collaborators` is what every use case has; `JobEnding` is what
ending a job takes (its in-flight slot, the failure announcement), built only by the functions that end jobs so
the webhook never loads admission.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from cutout.aws.queue_sends import Dispatcher
from cutout.domain.models import Clock, utc_now
from cutout.magic_hour.client import MagicHourAccess
from cutout.runtime.config import Settings
from cutout.store.counters import Counters
from cutout.store.job_store import JobStore

if TYPE_CHECKING:  # the webhook imports this module and must not load admission (job_ending imports it late)
    from cutout.admission.control import Admission, Slots
    from cutout.use_cases.terminal import Terminal


class Collaborators(NamedTuple):
    settings: Settings
    clock: Clock
    store: JobStore
    counters: Counters
    magic_hour: MagicHourAccess
    dispatch: Dispatcher


class JobEnding(NamedTuple):
    admission: Admission | None
    """In-flight admission; None when it is off."""
    slots: Slots
    """Every ending path gives its job's slot back through these."""
    terminal: Terminal


def collaborators(settings: Settings, store: JobStore | None = None, *, clock: Clock = utc_now) -> Collaborators:
    return Collaborators(
        settings=settings,
        clock=clock,
        store=store or JobStore(settings.jobs_table, clock=clock),
        counters=Counters(settings.jobs_table),
        magic_hour=MagicHourAccess(settings.magic_hour_base_url, settings.api_key_secret_id),
        dispatch=Dispatcher(settings, clock),
    )


def job_ending(common: Collaborators) -> JobEnding:
    # Imported here, when a use case that ends jobs is built (at cold start, as before), not at the top:
    # admission with what it imports and terminal.py are ~2 ms of cold start (11M instructions) that the
    # webhook, which ends no job, does not pay.
    from cutout.admission.control import Slots, admission_for
    from cutout.use_cases.terminal import Terminal

    admission = admission_for(common.settings, common.clock)
    slots = Slots(admission, common.dispatch.wake)
    terminal = Terminal(common.store, common.settings.event_bus_name, slots)
    if admission is not None:
        admission.reconciler.orphaned = terminal.orphaned_claim
    return JobEnding(admission, slots, terminal)
