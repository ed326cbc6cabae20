"""Admission slots over moto server (DynamoDB over HTTP, table schema from template.yaml).

Slots are acquired atomically, released exactly once whoever asks, limited by an AIMD effective limit, and a
periodic reconciliation against the job records frees whatever leaked — and says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from cutout.admission.control import LIMIT_KEY, WAITING, Acquired, Admission, Slots, slot_key
from cutout.domain.models import CREATE_OUTCOME_UNKNOWN, iso
from cutout.runtime.observability import metrics

from tests.conftest import Aws
from tests.support.observed import emitted_metrics, find_log
from tests.support.roles import function_role

# Taking a slot, lowering the limit on a 429 and reading the waiting line are the submit's work; steps another
# function does in production (a finish gives its slot back, the tick reconciles) run as that function.
pytestmark = pytest.mark.function_role("submit")

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


class Clock:
    """An injected clock the test moves by hand (no sleeping, no timing thresholds)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(aws: Aws, clock: Clock) -> Iterator[Callable[..., Admission]]:
    metrics.clear_metrics()

    def build(n: int = 3, **kwargs: Any) -> Admission:
        return Admission(aws.table, n, client=aws.client("dynamodb"), clock=clock, **kwargs)

    yield build
    metrics.clear_metrics()


def slot_of(acquired: Acquired | None) -> str | None:
    return acquired.slot_id if acquired else None


def put_job(aws: Aws, job_id: str, status: str, *, created_at: datetime = T0, **attrs: Any) -> None:
    record = {
        "job_id": job_id,
        "status": status,
        "source_bucket": aws.bucket,
        "source_key": f"incoming/{job_id}.png",
        "created_at": iso(created_at),
        "updated_at": iso(attrs.pop("updated_at", created_at)),
        **attrs,
    }
    aws.client("dynamodb").put_item(TableName=aws.table, Item=_ser(record))


def slot_items(aws: Aws) -> dict[str, str]:
    items = aws.client("dynamodb").scan(TableName=aws.table)["Items"]
    return {i["job_id"]["S"]: i["holder"]["S"] for i in items if i["job_id"]["S"].startswith("slot#")}


# ----- acquire / release ------------------------------------------------------------------------------
def test_at_most_n_jobs_hold_a_slot_and_the_rest_wait(make: Callable[..., Admission], aws: Aws) -> None:
    # given: three slots
    admission = make(3)

    # when: four jobs ask for one
    got = {job: slot_of(admission.acquire(job)) for job in ("a", "b", "c", "d")}

    # then: three distinct slots are held by the first three; the fourth gets none (it waits)
    assert sorted(s for s in got.values() if s) == [slot_key(0), slot_key(1), slot_key(2)]
    assert got["d"] is None
    assert slot_items(aws) == {got["a"]: "a", got["b"]: "b", got["c"]: "c"}


def test_each_acquire_takes_a_slot_of_its_own(make: Callable[..., Admission], aws: Aws) -> None:
    # given: a job holding a slot
    admission = make(2)
    first = admission.acquire("a")

    # when: a second dispatcher of the same job asks too (racing dispatches, a duplicate delivery)
    again = admission.acquire("a")

    # then: it gets another slot, not the first one's: whichever loses the claim gives back only its own, so the
    # winner's slot can never be freed under it
    assert first is not None and again is not None and again.slot_id != first.slot_id
    assert admission.release(again.slot_id, "a")
    assert slot_items(aws) == {first.slot_id: "a"}


def test_a_slot_is_released_exactly_once_whoever_asks(make: Callable[..., Admission], aws: Aws) -> None:
    # given: a full house of one
    admission = make(1)
    slot = slot_of(admission.acquire("a"))
    assert admission.acquire("b") is None

    # when: the finalize, the poll and the sweeper all release it, and a stranger tries too
    answers = []
    for function, holder in (("finalize", "a"), ("poll", "a"), ("sweeper", "z")):
        with function_role(function):
            answers.append(admission.release(slot, holder))

    # then: exactly one release freed it, and the next job gets it
    assert answers == [True, False, False]
    assert slot_of(admission.acquire("b")) == slot
    # and a late release by the old holder cannot take it away from the new one
    assert admission.release(slot, "a") is False
    assert slot_items(aws) == {slot: "b"}


def test_release_without_a_slot_changes_nothing(make: Callable[..., Admission], aws: Aws) -> None:
    admission = make(2)
    admission.acquire("a")
    assert admission.release(None, "a") is False
    assert admission.release("budget#2026-11-30", "a") is False
    assert list(slot_items(aws).values()) == ["a"]


def test_concurrent_acquirers_never_exceed_the_slots(make: Callable[..., Admission], aws: Aws) -> None:
    # given: three slots and twenty invocations arriving at once
    admission = make(3)
    results: dict[str, str | None] = {}
    barrier = threading.Barrier(20)

    def worker(job: str) -> None:
        barrier.wait()
        results[job] = slot_of(admission.acquire(job))

    threads = [threading.Thread(target=worker, args=(f"job{i}",)) for i in range(20)]

    # when: they all try to acquire
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then: exactly three won, each a different slot
    winners = {job: slot for job, slot in results.items() if slot}
    assert len(winners) == 3
    assert len(set(winners.values())) == 3
    assert slot_items(aws) == {slot: job for job, slot in winners.items()}


# ----- effective limit (AIMD) ---------------------------------------------------------------------------
def test_a_429_with_none_of_ours_in_flight_halves_the_limit_once_per_burst(
    make: Callable[..., Admission], clock: Clock
) -> None:
    # given: eight slots, nothing of ours at Magic Hour (the 429 is not about our concurrency)
    admission = make(8)

    # when: a burst of creates is answered 429
    first = admission.throttled("a")
    second = admission.throttled("b")

    # then: the limit is halved once for the burst
    assert first.effective == 4
    assert second.effective == 4
    # and after the back-off window the next 429 halves again, down to a floor of one
    clock.advance(seconds=31)
    assert admission.throttled("c").effective == 2
    clock.advance(seconds=31)
    assert admission.throttled("d").effective == 1
    clock.advance(seconds=31)
    assert admission.throttled("e").effective == 1


def test_a_429_lowers_the_limit_to_what_magic_hour_accepted(make: Callable[..., Admission]) -> None:
    # given: a limit of eight, two of our projects accepted at Magic Hour, and a third job's create refused
    admission = make(8)
    for job in ("a", "b", "c"):
        admission.acquire(job)

    # when: the refusal is reported
    lowered = admission.throttled("c")

    # then: the plan evidently allows two: that is the limit now (not a blind half, 4)
    assert lowered.effective == 2
    assert admission.limit().effective == 2


class LimitWritesMeet:
    """Holds each conditional write of the effective limit (the ``admission#limit`` item) until ``n`` are waiting,
    so that every writer has read the limit before any writes it: the race two 429s at once make on AWS, made
    certain instead of hoped for. A writer left waiting alone for 10 s breaks the barrier (and says so)."""

    def __init__(self, n: int) -> None:
        self.barrier = threading.Barrier(n, timeout=10)
        self.met = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", {}).get("job_id", {}).get("S") == LIMIT_KEY:
            self.barrier.wait()
            self.met += 1


def test_two_429s_at_once_lower_the_limit_once_and_the_loser_reads_what_won(make: Callable[..., Admission]) -> None:
    # given: two slots taken by two jobs whose creates are both refused with 429, their reports racing: both read
    # the limit before either writes it
    admission = make(2)
    for job in ("a", "b"):
        admission.acquire(job)
    meet = LimitWritesMeet(2)
    admission.slot_table.client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", meet)
    results: dict[str, int] = {}

    def report(job: str) -> None:
        results[job] = admission.throttled(job).effective

    # when: both are reported at once (as the submit, whose role reads the limit the winner wrote)
    threads = [threading.Thread(target=report, args=(job,)) for job in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then: one compare-and-set won and the other's report answers with what it wrote: one lowering, to the one
    # project of ours Magic Hour had accepted beside each
    assert meet.met == 2
    assert results == {"a": 1, "b": 1}
    assert admission.limit().effective == 1


def test_the_limit_recovers_one_per_success_after_the_backoff(make: Callable[..., Admission], clock: Clock) -> None:
    # given: a limit halved from 4 to 2
    admission = make(4)
    admission.throttled("a")

    # when: projects finish well inside the back-off window, then after it (the finalize's work)
    with function_role("finalize"):
        during = admission.succeeded()
        clock.advance(seconds=31)
        after = [admission.succeeded().effective for _ in range(4)]

    # then: no increase while backing off; then +1 per success, capped at the configured maximum
    assert during.effective == 2
    assert after == [3, 4, 4, 4]


def test_a_finish_raises_the_limit_only_for_a_slot_taken_below_the_top(
    make: Callable[..., Admission], clock: Clock
) -> None:
    # given: four slots, a job started while the limit stood at the top, then a 429 lowering the limit to the one
    # project Magic Hour had accepted
    admission = make(4)
    slots = Slots(admission, lambda *_: None)
    before = slot_of(admission.acquire("before"))
    admission.throttled("z")
    clock.advance(seconds=31)

    # when: it finishes well, then a job started under the lowered limit finishes well
    with function_role("finalize"):
        assert slots.finished("before", before, succeeded=True, why="finished")
    after_before = admission.limit().effective
    with function_role("submit"):
        after = slot_of(admission.acquire("after"))
    with function_role("finalize"):
        assert slots.finished("after", after, succeeded=True, why="finished")

    # then: the slot taken at the top raises nothing (its release reads no limit); the one taken below it raises it
    # by one: what a release does next is written on the slot when it is taken
    assert after_before == 1
    assert admission.limit().effective == 2


@pytest.mark.function_role("finalize")
def test_success_at_the_top_writes_nothing(make: Callable[..., Admission], aws: Aws) -> None:
    # given: a limit never lowered
    admission = make(3)

    # when: a project finishes
    assert admission.succeeded().effective == 3

    # then: no limit item was written (a success costs no write in the common case)
    item = aws.client("dynamodb").get_item(TableName=aws.table, Key={"job_id": {"S": LIMIT_KEY}})
    assert "Item" not in item


def test_acquire_respects_the_lowered_limit(make: Callable[..., Admission]) -> None:
    # given: four slots, a limit lowered to two by a 429
    admission = make(4)
    admission.throttled("a")

    # when: four jobs ask
    got = [slot_of(admission.acquire(j)) for j in ("a", "b", "c", "d")]

    # then: only two are admitted, on the lowest two slots
    assert sorted(s for s in got if s) == [slot_key(0), slot_key(1)]


def set_limit(aws: Aws, effective: int) -> None:
    aws.client("dynamodb").put_item(
        TableName=aws.table, Item={"job_id": {"S": LIMIT_KEY}, "effective": {"N": str(effective)}}
    )


def test_slots_above_a_lowered_limit_drain_before_new_jobs_start(make: Callable[..., Admission], aws: Aws) -> None:
    # given: three jobs in flight on four slots, then the effective limit is lowered to two
    admission = make(4)
    held = {j: slot_of(admission.acquire(j)) for j in ("a", "b", "c")}
    set_limit(aws, 2)

    # when: one of them ends (its finalize gives the slot back) and a new job asks
    with function_role("finalize"):
        admission.release(held["a"], "a")
    blocked = admission.acquire("d")
    # and another ends
    with function_role("finalize"):
        admission.release(held["b"], "b")
    admitted = admission.acquire("d")

    # then: the new job starts only once fewer than two are in flight
    assert blocked is None
    assert admitted is not None


def test_a_lowered_maximum_applies_at_once(make: Callable[..., Admission], aws: Aws) -> None:
    # given: a limit item written under a larger MaxJobsInFlight
    aws.client("dynamodb").put_item(TableName=aws.table, Item={"job_id": {"S": LIMIT_KEY}, "effective": {"N": "10"}})

    # when: the stack now runs with two
    admission = make(2)

    # then: two is the limit
    assert admission.limit().effective == 2
    assert [admission.acquire(j) is not None for j in ("a", "b", "c")] == [True, True, False]


def test_the_maximum_is_bounded_by_one_batch_read() -> None:
    with pytest.raises(ValueError, match=r"1\.\.99"):
        Admission("t", 100)
    with pytest.raises(ValueError, match=r"1\.\.99"):
        Admission("t", 0)


# ----- the waiting line ---------------------------------------------------------------------------------
def test_waiting_jobs_come_out_oldest_first(make: Callable[..., Admission], aws: Aws) -> None:
    # given: waiting jobs uploaded in a shuffled order, and jobs in other states
    for job, minute in (("w3", 3), ("w1", 1), ("w4", 4), ("w2", 2)):
        put_job(aws, job, WAITING, created_at=T0 + timedelta(minutes=minute))
    put_job(aws, "q", "queued")
    admission = make(3)

    # when: the dispatcher asks for the next three
    nxt = admission.oldest_waiting(3)

    # then: the three oldest waiting jobs, oldest first; the count sees all four
    assert [j.job_id for j in nxt] == ["w1", "w2", "w3"]
    assert admission.count_waiting() == 4
    # and the count stops at its cap (the periodic tick must not read a million-job backlog every minute)
    assert admission.count_waiting(max_items=3) == 3
    assert admission.oldest_waiting(0) == []


# ----- reconciliation -----------------------------------------------------------------------------------
def hold(aws: Aws, index: int, holder: str, acquired_at: datetime) -> str:
    """A slot item as an acquire writes it (what a crashed path leaves behind)."""
    key = slot_key(index)
    aws.client("dynamodb").put_item(
        TableName=aws.table,
        Item={"job_id": {"S": key}, "holder": {"S": holder}, "acquired_at": {"S": iso(acquired_at)}},
    )
    return key


@pytest.mark.function_role("sweeper")
def test_reconcile_on_a_healthy_table_repairs_nothing_and_says_so(
    make: Callable[..., Admission], aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: two jobs rendering with their slots, and one waiting
    admission = make(3)
    for job in ("a", "b"):
        put_job(aws, job, "rendering")
        with function_role("submit"):
            admission.acquire(job)
    put_job(aws, "w", WAITING)

    # when: the periodic reconciliation runs
    result = admission.reconcile()
    metrics.flush_metrics()

    # then: nothing repaired; in flight and waiting are reported
    assert (result.in_flight, result.waiting, result.repaired) == (2, 1, ())
    emitted = emitted_metrics(capsys.readouterr().out)
    assert (emitted["SlotsRepaired"], emitted["JobsInFlight"], emitted["JobsWaiting"]) == (0, 2, 1)


@pytest.mark.function_role("sweeper")
def test_reconcile_frees_leaked_slots_and_counts_them(
    make: Callable[..., Admission],
    aws: Aws,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    no_secrets_in_logs: Any,
) -> None:
    # given: slots left behind by paths that died before releasing
    long_ago = T0 - timedelta(minutes=5)
    put_job(aws, "done", "complete", updated_at=long_ago)  # finished, its release was lost
    hold(aws, 0, "done", long_ago)
    hold(aws, 1, "ghost", long_ago)  # no such job
    put_job(aws, "parked", WAITING)  # took a slot, died before it was dispatched
    hold(aws, 2, "parked", long_ago)
    put_job(aws, "live", "rendering")  # healthy
    hold(aws, 3, "live", long_ago)
    put_job(aws, "ending", "error", updated_at=T0)  # ending right now: its own path is about to release
    hold(aws, 4, "ending", long_ago)
    admission = make(5)

    # when: the reconciliation runs
    result = admission.reconcile()
    metrics.flush_metrics()

    # then: the three leaks are freed, each with its reason; the live and the just-ended ones are left alone
    assert sorted((r.holder, r.reason) for r in result.repaired) == [
        ("done", "holder_complete"),
        ("ghost", "holder_missing"),
        ("parked", "holder_waiting"),
    ]
    assert slot_items(aws) == {slot_key(3): "live", slot_key(4): "ending"}
    assert result.in_flight == 2
    assert emitted_metrics(capsys.readouterr().out)["SlotsRepaired"] == 3
    assert find_log(no_secrets_in_logs.lines, reason="holder_missing", job_id="ghost") is not None


@pytest.mark.function_role("sweeper")
def test_an_unknown_outcome_keeps_its_slot_until_the_bound(
    make: Callable[..., Admission], aws: Aws, clock: Clock
) -> None:
    # given: an ambiguous create recorded at T0 (its project may be rendering at Magic Hour), and a submit that
    # claimed at T0 and died mid-create (its claim goes stale after the 2-minute lease)
    put_job(aws, "amb", "error", error_code=CREATE_OUTCOME_UNKNOWN, ambiguous=True, updated_at=T0)
    hold(aws, 0, "amb", T0 - timedelta(minutes=1))  # the slot was taken before the create began
    put_job(aws, "mid", "submitting", claimed_at=iso(T0))
    hold(aws, 1, "mid", T0)
    admission = make(2, unknown_outcome_hold=timedelta(minutes=15), submit_lease=timedelta(minutes=2))

    # when: the reconciliation runs within the bound, after the ambiguous one's, and after the dead worker's
    clock.advance(minutes=14)
    within = admission.reconcile()
    clock.advance(minutes=2)
    after_ambiguous = admission.reconcile()
    clock.advance(minutes=2)
    after_dead_worker = admission.reconcile()

    # then: each is kept while evidence may still come, and freed (and counted) once its own bound has passed,
    # counted from when its outcome became unknown (the record written; the lease run out)
    assert within.repaired == ()
    assert [(r.holder, r.reason) for r in after_ambiguous.repaired] == [("amb", "unknown_outcome_past_bound")]
    assert [(r.holder, r.reason) for r in after_dead_worker.repaired] == [("mid", "unknown_outcome_past_bound")]
    assert slot_items(aws) == {}


@pytest.mark.function_role("sweeper")
def test_a_slow_create_keeps_its_slot_while_its_worker_lives(
    make: Callable[..., Admission], aws: Aws, clock: Clock
) -> None:
    # given: a job whose worker took its slot and is still inside its create, long after the unknown-outcome bound
    put_job(aws, "slow", "submitting", claimed_at=iso(T0))
    hold(aws, 0, "slow", T0)
    admission = make(1, unknown_outcome_hold=timedelta(seconds=10), submit_lease=timedelta(minutes=2))

    # when: the reconciliation runs while the claim is fresh, and an upload asks for a slot
    clock.advance(seconds=100)
    result = admission.reconcile()
    with function_role("submit"):
        taken = admission.acquire("next")

    # then: the slot is not taken from a create in progress (its project would be one too many at Magic Hour)
    assert result.repaired == ()
    assert taken is None
    assert slot_items(aws) == {slot_key(0): "slow"}


@pytest.mark.function_role("sweeper")
def test_reconcile_does_not_free_a_slot_taken_again_meanwhile(make: Callable[..., Admission], aws: Aws) -> None:
    # given: a leaked slot that another job re-took between the reconciliation's read and its repair
    admission = make(1)
    slot = hold(aws, 0, "ghost", T0 - timedelta(minutes=5))
    snapshot = admission.snapshot()
    assert admission.release(slot, "ghost")
    with function_role("submit"):
        assert slot_of(admission.acquire("new")) == slot

    # when: the repair of what was read is attempted
    freed = admission.slot_table.free(snapshot.slots[0])

    # then: the new holder keeps it
    assert freed is False
    assert slot_items(aws) == {slot: "new"}


@pytest.mark.function_role("sweeper")
def test_reconcile_frees_the_losing_slot_of_a_job_dispatched_twice(make: Callable[..., Admission], aws: Aws) -> None:
    # given: two racing dispatches of one job each took a slot; the record names the winner's
    long_ago = T0 - timedelta(minutes=5)
    put_job(aws, "a", "rendering", slot=slot_key(0))
    hold(aws, 0, "a", long_ago)
    hold(aws, 1, "a", long_ago)
    admission = make(2)

    # when: the reconciliation runs
    result = admission.reconcile()

    # then: the loser's slot is freed, the winner's kept
    assert [(r.slot_id, r.reason) for r in result.repaired] == [(slot_key(1), "holder_holds_another_slot")]
    assert slot_items(aws) == {slot_key(0): "a"}


def test_random_acquires_and_releases_keep_the_books(make: Callable[..., Admission], aws: Aws) -> None:
    # given: four slots and eight workers each running jobs through acquire → (work) → release, some releasing twice
    admission = make(4)
    freed: list[tuple[str, str]] = []
    lock = threading.Lock()
    peak = [0]

    def worker(w: int) -> None:
        for j in range(12):
            job = f"w{w}-j{j}"
            slot = slot_of(admission.acquire(job))
            if slot is None:
                continue
            with lock:
                peak[0] = max(peak[0], len(slot_items(aws)))
            # the ending path, and a duplicate of it (webhook and poll both report the finish)
            for _ in range(1 + j % 2):
                if admission.release(slot, job):
                    with lock:
                        freed.append((slot, job))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]

    # when: they all run at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then: never more than four held, every acquisition freed exactly once, nothing left behind
    assert peak[0] <= 4
    assert len(freed) == len(set(freed))
    assert slot_items(aws) == {}


def test_aimd_converges_on_the_plans_real_limit(make: Callable[..., Admission], clock: Clock) -> None:
    """MaxJobsInFlight set to 8 against a plan that really allows 2: the 429s stop once the limit has learnt."""
    # given: our limit 8, Magic Hour's 2 (it answers 429 to a create beyond 2 unfinished projects)
    admission = make(8)
    real_limit = 2
    at_magic_hour: list[str] = []
    waiting = [f"job{i:03d}" for i in range(200)]
    refused_per_round: list[int] = []
    busy_per_round: list[int] = []

    # when: rounds of dispatch (every waiting job that gets a slot is created) and completion (the oldest ends)
    for _ in range(24):
        refused = 0
        for job in list(waiting):
            slot = slot_of(admission.acquire(job))
            if slot is None:
                break
            if len(at_magic_hour) >= real_limit:
                refused += 1  # 429: the job goes back to waiting, its slot is given back, the limit backs off
                admission.throttled(job)
                admission.release(slot, job)
                break
            waiting.remove(job)
            at_magic_hour.append(job)
        refused_per_round.append(refused)
        busy_per_round.append(len(at_magic_hour))
        if at_magic_hour:
            done = at_magic_hour.pop(0)
            slot = next(s.slot_id for s in admission.snapshot().slots if s.holder == done)  # as its record says
            with function_role("finalize"):  # the job's finish gives its slot back and raises the limit
                admission.release(slot, done)
                admission.succeeded()
        clock.advance(seconds=10)

    # then: the first 429 teaches the limit at once; afterwards Magic Hour is kept full (2 busy every round)
    # and a refusal is only the occasional probe one above the limit (at most one per back-off window)
    assert refused_per_round[0] == 1
    assert admission.limit().effective in (real_limit, real_limit + 1)
    assert busy_per_round == [real_limit] * len(busy_per_round)
    assert sum(refused_per_round[1:]) <= len(refused_per_round) // 3


@pytest.mark.function_role("sweeper")
def test_reconcile_asks_for_a_dispatch_only_when_jobs_wait_beside_a_free_slot(
    make: Callable[..., Admission], aws: Aws
) -> None:
    admission = make(1)
    assert admission.reconcile().should_dispatch is False  # nothing waits
    put_job(aws, "w", WAITING)
    assert admission.reconcile().should_dispatch is True  # waits, slot free: a missed wake-up
    put_job(aws, "r", "rendering")
    with function_role("submit"):
        admission.acquire("r")
    assert admission.reconcile().should_dispatch is False  # waits for a good reason


def _ser(record: dict[str, Any]) -> dict[str, Any]:
    serializer = TypeSerializer()
    return {k: serializer.serialize(v) for k, v in record.items() if v is not None}


def test_a_job_finding_no_free_slot_repairs_a_leaked_one_on_the_spot(
    make: Callable[..., Admission], aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: the only slot held by a job that ended minutes ago (its release was lost)
    put_job(aws, "done", "complete", updated_at=T0 - timedelta(minutes=5))
    hold(aws, 0, "done", T0 - timedelta(minutes=5))
    admission = make(1)

    # when: a new job asks for a slot (no periodic tick has run)
    got = admission.acquire("new")
    metrics.flush_metrics()

    # then: it gets the repaired slot at once, and the repair is counted
    assert got is not None and got.slot_id == slot_key(0)
    assert emitted_metrics(capsys.readouterr().out)["SlotsRepaired"] == 1
