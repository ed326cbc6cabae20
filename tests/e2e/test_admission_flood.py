"""A burst of uploads through the local stack with a small MaxJobsInFlight: Magic Hour never
has more of our projects at once than the limit, every upload completes, nothing is dead-lettered, each upload is
created once, and the slots end empty with nothing to repair.

The emulator counts the highest number of projects it ever had rendering at once (`max_concurrent_rendering`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cutout.admission.control import SLOT_PREFIX

from cutout_dev.local_stack import LocalStack
from tests.support.images import image_bytes

MakeStack = Callable[..., LocalStack]


def _burst(stack: LocalStack, n: int) -> list[Any]:
    # Distinct bytes per upload (a colour each): distinct jobs, as a catalogue drop would be.
    return [
        stack.upload(image_bytes("PNG", colour=(i % 250, (7 * i) % 250, 90)), f"burst/{i:03d}.png") for i in range(n)
    ]


def _slot_items(stack: LocalStack) -> dict[str, Any]:
    items = stack.client("dynamodb").scan(TableName=stack.endpoints.table)["Items"]
    return {i["job_id"]["S"]: i for i in items if i["job_id"]["S"].startswith((SLOT_PREFIX, "admission#"))}


def _dead_letters(stack: LocalStack) -> dict[str, int]:
    depths = stack.queue_depths()
    return {dlq: depths[dlq] for dlq in stack.dead_letter_queues()}


def test_a_burst_never_has_more_projects_at_magic_hour_than_the_limit(make_stack: MakeStack) -> None:
    # given: MaxJobsInFlight 2, and a Magic Hour stand-in with no plan limit of its own (so its count is ours)
    stack = make_stack(webhooks=True, parameters={"MaxJobsInFlight": "2"}, emulator={"render_seconds": 0.3})

    # when: 24 distinct uploads land at once
    uploads = _burst(stack, 24)
    jobs = stack.wait_for_terminal(uploads, timeout=120)

    # then: all complete, each created once, never more than 2 rendering at once, nothing dead-lettered
    assert {j["status"] for j in jobs.values()} == {"complete"}
    names = [c.name for c in stack.emulator.state.creates]
    assert sorted(names) == sorted(f"cutout:{u.job_id}" for u in uploads)
    assert stack.emulator.plan_stats().overall.max_concurrent_rendering <= 2
    assert set(_dead_letters(stack).values()) == {0}
    # and the books are closed: no slot held, nothing for the reconciliation to repair
    assert [k for k in _slot_items(stack) if k.startswith(SLOT_PREFIX)] == []
    tick = stack.functions["SweeperFunction"].invoke({"task": "admission"})
    assert tick == {"in_flight": 0, "waiting": 0, "repaired": 0}


def test_a_limit_set_above_the_plan_loses_nothing_to_429s(make_stack: MakeStack) -> None:
    # given: MaxJobsInFlight 5, but the plan allows 2 and Magic Hour answers 429 beyond it (the reject model)
    stack = make_stack(
        webhooks=True,
        parameters={"MaxJobsInFlight": "5"},
        emulator={"render_seconds": 0.3, "plan_concurrency": 2, "plan_mode": "reject"},
    )

    # when: a burst of 16 uploads
    uploads = _burst(stack, 16)
    jobs = stack.wait_for_terminal(uploads, timeout=180)

    # then: every upload completes, created once (a 429 creates nothing), and none is dead-lettered: a refused
    # create is retried briefly (Magic Hour's advice for 429), then the job waits and the limit drops
    assert {j["status"] for j in jobs.values()} == {"complete"}
    names = [c.name for c in stack.emulator.state.creates]
    assert sorted(names) == sorted(f"cutout:{u.job_id}" for u in uploads)
    assert set(_dead_letters(stack).values()) == {0}
    # (The emulator's own count of projects rendering cannot pass its plan of 2 whatever Cutout does: not asserted.
    # Whether the plan refused at all depends on the machine's pace, so neither is that.)
