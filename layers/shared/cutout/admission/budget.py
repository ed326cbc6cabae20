"""The daily credit budget: a create reserves its credits first; a create that provably did not happen gives
them back. A spent budget raises BudgetExhausted (the upload waits in its queue, see submit's parking)."""

from __future__ import annotations

from datetime import timedelta

from cutout.domain.errors import BudgetExhausted
from cutout.domain.models import Clock
from cutout.magic_hour.client import CREDITS_PER_IMAGE
from cutout.runtime.observability import count, logger
from cutout.store.counters import Counters

# A day's counter outlives its day (time zones of whoever reads it), then expires (TTL).
COUNTER_RETENTION = timedelta(days=3)


class CreditBudget:
    def __init__(self, counters: Counters, daily_credits: int, clock: Clock) -> None:
        self.counters = counters
        self.daily_credits = daily_credits  # 0 = no budget
        self.clock = clock

    def reserve(self) -> str | None:
        """Reserve one image's credits on today's (UTC) counter. Returns the counter to `release`, or None when
        there is no budget. Raises BudgetExhausted when the credits would pass today's budget."""
        if self.daily_credits <= 0:
            return None
        now = self.clock()
        counter = f"budget#{now.strftime('%Y-%m-%d')}"
        if not self.counters.add(counter, CREDITS_PER_IMAGE, self.daily_credits, now + COUNTER_RETENTION):
            count("BudgetExhausted")
            logger.warning(
                "daily credit budget reached; upload waits in the queue", extra={"budget": self.daily_credits}
            )
            raise BudgetExhausted(f"daily credit budget of {self.daily_credits} reached")
        return counter

    def release(self, counter: str | None) -> None:
        """Give a reservation back (the create provably did not happen, or Magic Hour refused it)."""
        if counter:
            self.counters.add(counter, -CREDITS_PER_IMAGE, 0, self.clock() + COUNTER_RETENTION)
