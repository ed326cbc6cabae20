"""What every use case (submit, finalize, poll, sweep, webhook) works with, built in one place.

Each collaborator is injectable for the local stack, the soak and tests: a clock (so "now" can be moved without
patching), a store. The rest is derived from the settings and built lazily where it costs (Magic Hour's client
reads its secret on first use).

`Collaborators` is what every use case has; `UseCase` adds what ending a job takes (its in-flight slot, the failure
announcement). The webhook ends no job: it is a `Collaborators` and never loads admission (see `UseCase`).
"""

from __future__ import annotations

from cutout.aws.queue_sends import Dispatcher
from cutout.domain.models import Clock, utc_now
from cutout.magic_hour.client import MagicHourAccess
from cutout.runtime.config import Settings
from cutout.store.counters import Counters
from cutout.store.job_store import JobStore


class Collaborators:
    def __init__(self, settings: Settings, store: JobStore | None = None, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.store = store or JobStore(settings.jobs_table, clock=clock)
        self.counters = Counters(settings.jobs_table)
        self.magic_hour = MagicHourAccess(settings.magic_hour_base_url, settings.api_key_secret_id)
        self.dispatch = Dispatcher(settings, clock)


class UseCase(Collaborators):
    def __init__(self, settings: Settings, store: JobStore | None = None, *, clock: Clock = utc_now) -> None:
        super().__init__(settings, store, clock=clock)
        # Imported when a use case that ends jobs is built (at cold start, as before), not at the top: admission.py
        # with what it imports (slots, reconcile, admission_limit) and terminal.py are ~2 ms of cold start (11M
        # instructions) that the webhook, which ends no job, does not pay.
        from cutout.admission.control import Slots, admission_for
        from cutout.use_cases.terminal import Terminal

        # In-flight slots (None when admission is off); every ending path gives its job's slot back through these.
        self.admission = admission_for(settings, self.clock)
        self.slots = Slots(self.admission, self.dispatch.wake)
        self.terminal = Terminal(self.store, settings.event_bus_name, self.slots)
