"""The effective in-flight limit (additive increase, measured decrease), kept in the `admission#limit` item.

A 429 on a create lowers it, once per back-off window, to the number of our projects Magic Hour had accepted
(halving when there were none: then the 429 was not about our concurrency); each successful finish adds 1 (up to
N) after the window. The item is written only when the value changes, by compare-and-set on the stored value.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cutout.admission.slots import LIMIT_KEY, Limit, SlotTable
from cutout.domain.models import iso
from cutout.runtime.observability import count, logger

# After a 429 the limit is not lowered again nor raised within this window: one decrease per congestion episode
# (several creates of one burst all see the same 429), and no increase straight back into the wall.
DEFAULT_BACKOFF = timedelta(seconds=30)


class AdaptiveLimit:
    """Lowers the effective limit on a 429 and raises it on each success."""

    def __init__(self, slots: SlotTable, backoff: timedelta = DEFAULT_BACKOFF) -> None:
        self.slots = slots
        self.backoff = backoff

    def throttled(self, job_id: str) -> Limit:
        """Magic Hour answered 429 to `job_id`'s create: lower the effective limit, once per back-off window.

        The projects of ours it had accepted (the other held slots) measure what the plan really allows, so the
        limit drops to that (below the current one, at least 1), not blindly to half: a MaxJobsInFlight of 8
        against a plan of 2 lands on 2 at the first 429 instead of oscillating 1-2-3. When none of ours were in
        flight, the 429 says nothing about our concurrency (a rate limit, another tool on the key): halve.
        """
        snap = self.slots.snapshot()
        seen = snap.limit
        now = self.slots.clock()
        if seen.backing_off(now):
            return seen  # this burst's first 429 has already lowered it
        others = len([s for s in snap.held if s.holder != job_id])
        lowered = min(max(1, others), seen.effective - 1) if others else seen.effective // 2
        lowered = max(1, lowered)
        until = now + self.backoff
        if self._write_limit(seen, lowered, until):
            count("AdmissionLimitLowered")
            logger.warning(
                "Magic Hour throttled a create; in-flight limit lowered",
                extra={
                    "effective_limit": lowered,
                    "previous_limit": seen.effective,
                    "accepted_in_flight": others,
                    "backoff_until": iso(until),
                },
            )
            return Limit(lowered, seen.maximum, lowered, until)
        return self.slots.limit()  # someone else changed it first: theirs stands

    def succeeded(self, seen: Limit | None = None) -> Limit:
        """A project finished well: raise the effective limit by one towards the maximum (no write at the top)."""
        seen = seen or self.slots.limit()
        if seen.effective >= seen.maximum and (seen.stored is None or seen.stored == seen.effective):
            return seen
        if seen.backing_off(self.slots.clock()):
            return seen
        raised = min(seen.maximum, seen.effective + 1)
        if self._write_limit(seen, raised, seen.backoff_until):
            return Limit(raised, seen.maximum, raised, seen.backoff_until)
        return seen  # a concurrent change (a 429, or another success) wins; the next success tries again

    def _write_limit(self, seen: Limit, value: int, backoff_until: datetime | None) -> bool:
        """Compare-and-set on the stored value, so concurrent 429s halve once and increases never skip a halving."""
        values: dict[str, Any] = {":v": {"N": str(value)}, ":u": {"S": iso(self.slots.clock())}}
        update = "SET effective = :v, updated_at = :u"
        if backoff_until is not None:
            update += ", backoff_until = :b"
            values[":b"] = {"S": iso(backoff_until)}
        if seen.stored is None:
            condition = "attribute_not_exists(effective)"
        else:
            condition = "effective = :seen"
            values[":seen"] = {"N": str(seen.stored)}
        try:
            self.slots.client.update_item(
                TableName=self.slots.table,
                Key={"job_id": {"S": LIMIT_KEY}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except self.slots.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
