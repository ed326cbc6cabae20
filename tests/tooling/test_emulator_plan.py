"""The plan's concurrency limit per API key, over HTTP: `queue` holds the excess `queued`, `reject` answers 429.

Renders are held open by the file server (`held=True` inputs) so "while two are rendering" is a state
the test controls, not a timing guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cutout_dev.emulator import EmulatorConfig, EmulatorServer, key_id
from cutout_dev.emulator.testing import StaticFileServer, WebhookReceiver, image_bytes

KEY = "emulator-key"
OTHER_KEY = "second-account-key"


@pytest.fixture
def emu(receiver: WebhookReceiver) -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        queue_seconds=0.01,
        render_seconds=0.02,
        webhook_url=receiver.url,
        webhook_secret="s",
        extra_api_keys=(OTHER_KEY,),
    )
    with EmulatorServer(config) as server:
        yield server


def create(emu: EmulatorServer, url: str, key: str = KEY) -> requests.Response:
    return requests.post(
        f"{emu.base_url}/v1/image-background-remover",
        json={"assets": {"image_file_path": url}},
        headers={"Authorization": f"Bearer {key}"},
    )


def status(emu: EmulatorServer, project_id: str) -> str:
    body = requests.get(
        f"{emu.base_url}/v1/image-projects/{project_id}", headers={"Authorization": f"Bearer {KEY}"}
    ).json()
    result: str = body["status"]
    return result


def plan(emu: EmulatorServer) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(f"{emu.base_url}/_emulator/plan").json()
    return body


def events(receiver: WebhookReceiver) -> list[tuple[str, str]]:
    """(type, project id) in the order the single delivery thread sent them."""
    out = []
    for hook in receiver.snapshot():
        body = json.loads(hook.body)
        out.append((body["type"], body["payload"]["id"]))
    return out


def input_paths(n: int) -> list[str]:
    return [f"/in{i}.png" for i in range(n)]


def timestamp(emu: EmulatorServer, project_id: str, name: str) -> float:
    project = emu.project(project_id)
    assert project is not None
    value = getattr(project, name)
    assert isinstance(value, float)
    return value


def test_queue_mode_renders_at_most_the_limit_and_starts_the_rest_in_order(
    emu: EmulatorServer, files: StaticFileServer, receiver: WebhookReceiver
) -> None:
    # Given a plan of 2 that queues the excess, and five inputs whose fetch is held open
    emu.configure(plan_concurrency=2, plan_mode="queue")
    paths = input_paths(5)
    urls = [files.add(p, image_bytes(), held=True) for p in paths]

    # When five projects are created
    ids = [create(emu, url).json()["id"] for url in urls]

    # Then two render and three report `queued`, waiting for a slot
    emu.wait_until(lambda: plan(emu)["overall"]["rendering"] == 2)
    assert [status(emu, pid) for pid in ids] == ["rendering", "rendering", "queued", "queued", "queued"]
    counts = plan(emu)["overall"]
    assert (counts["rendering"], counts["queued"], counts["waiting_for_slot"]) == (2, 3, 3)
    assert [e for e in events(receiver) if e[0] == "image.started"] == [
        ("image.started", ids[0]),
        ("image.started", ids[1]),
    ]

    # When the renders may proceed
    for p in paths:
        files.release(p)

    # Then all five complete, never more than two rendering at once, and each started in creation order
    for pid in ids:
        assert emu.wait_for_status(pid).status == "complete"
    emu.wait_idle()
    assert plan(emu)["overall"] == {
        "unfinished": 0,
        "rendering": 0,
        "queued": 0,
        "waiting_for_slot": 0,
        "max_concurrent_rendering": 2,
    }
    assert plan(emu)["by_key"][key_id(KEY)]["max_concurrent_rendering"] == 2
    sent = events(receiver)
    assert [pid for kind, pid in sent if kind == "image.started"] == ids
    running = 0
    for kind, _ in sent:  # deliveries go out in emission order: replaying them replays the plan
        running += {"image.started": 1, "image.completed": -1}[kind]
        assert 0 <= running <= 2
    # The n-th queued project started (and its render time counts from) no earlier than the n-th finish.
    started = [timestamp(emu, pid, "started_at") for pid in ids[2:]]
    finishes = sorted(timestamp(emu, pid, "finished_at") for pid in ids)
    assert all(start >= end for start, end in zip(started, finishes, strict=False))


def test_reject_mode_answers_429_without_creating_or_charging(emu: EmulatorServer, files: StaticFileServer) -> None:
    # Given a plan of 2 that rejects beyond it, with two projects rendering held inputs
    emu.configure(plan_concurrency=2, plan_mode="reject")
    first, second = (files.add(p, image_bytes(), held=True) for p in ("/a.png", "/b.png"))
    ids = [create(emu, url).json()["id"] for url in (first, second)]

    # When a third is created
    refused = create(emu, files.add("/c.png", image_bytes()))

    # Then it is refused with the documented error envelope, and nothing is made or charged
    assert refused.status_code == 429
    assert refused.json() == {"message": "Too Many Requests"}
    assert refused.headers["Content-Type"] == "application/json"
    assert [c.id for c in emu.state.creates] == ids
    assert emu.net_credits_spent() == 10
    assert plan(emu)["overall"]["unfinished"] == 2

    # When one of the two finishes, a create succeeds again
    files.release("/a.png")
    emu.wait_for_status(ids[0])
    accepted = create(emu, files.add("/d.png", image_bytes()))
    assert accepted.status_code == 200
    assert emu.net_credits_spent() == 15
    files.release("/b.png")
    for pid in (ids[1], accepted.json()["id"]):
        assert emu.wait_for_status(pid).status == "complete"
    assert plan(emu)["overall"]["max_concurrent_rendering"] == 2


def test_reject_mode_counts_queued_projects_too(emu: EmulatorServer, files: StaticFileServer) -> None:
    # Given a plan of 1 that rejects, and a project still in its queue phase
    emu.configure(plan_concurrency=1, plan_mode="reject", queue_seconds=30)
    url = files.add("/a.png", image_bytes())
    assert create(emu, url).status_code == 200

    # When a second is created before the first ever renders, then it is refused
    assert create(emu, url).status_code == 429
    assert plan(emu)["overall"] == {
        "unfinished": 1,
        "rendering": 0,
        "queued": 1,
        "waiting_for_slot": 0,
        "max_concurrent_rendering": 0,
    }


def test_limits_are_per_api_key(emu: EmulatorServer, files: StaticFileServer) -> None:
    # Given a plan of 1 per key, rejecting, and the first key's slot taken
    emu.configure(plan_concurrency=1, plan_mode="reject")
    url = files.add("/a.png", image_bytes(), held=True)
    assert create(emu, url).status_code == 200

    # When each key creates one more
    same_key = create(emu, url)
    other_key = create(emu, url, key=OTHER_KEY)

    # Then only the full key is refused, and the counts are kept per key and overall
    assert (same_key.status_code, other_key.status_code) == (429, 200)
    emu.wait_until(lambda: plan(emu)["overall"]["rendering"] == 2)
    body = plan(emu)
    assert body["plan_concurrency"] == 1 and body["plan_mode"] == "reject"
    assert {k: v["rendering"] for k, v in body["by_key"].items()} == {key_id(KEY): 1, key_id(OTHER_KEY): 1}
    assert body["overall"]["max_concurrent_rendering"] == 2
    assert KEY not in json.dumps(body)  # keys are labelled, never shown
    files.release("/a.png")
    emu.wait_idle()


def test_raising_the_limit_starts_waiting_projects(emu: EmulatorServer, files: StaticFileServer) -> None:
    # Given a plan of 1 that queues, one project rendering and one waiting
    emu.configure(plan_concurrency=1, plan_mode="queue")
    url = files.add("/a.png", image_bytes(), held=True)
    ids = [create(emu, url).json()["id"] for _ in range(2)]
    emu.wait_until(lambda: plan(emu)["overall"]["waiting_for_slot"] == 1)

    # When the limit is raised at run time
    resp = requests.post(f"{emu.base_url}/_emulator/config", json={"plan_concurrency": 2})
    assert resp.status_code == 200

    # Then the waiting project starts without waiting for the first to finish
    assert emu.wait_for_status(ids[1], "rendering").status == "rendering"
    assert status(emu, ids[0]) == "rendering"
    files.release("/a.png")
    for pid in ids:
        assert emu.wait_for_status(pid).status == "complete"


def test_never_complete_holds_its_slot_and_does_not_hang_quiescence(
    emu: EmulatorServer, files: StaticFileServer, receiver: WebhookReceiver
) -> None:
    # Given a plan of 1 that queues, and a first project that gets stuck rendering
    emu.configure(plan_concurrency=1, plan_mode="queue", never_complete_rate=1.0)
    url = files.add("/a.png", image_bytes())
    stuck = create(emu, url).json()["id"]
    emu.wait_for_status(stuck, "rendering")
    emu.configure(never_complete_rate=0.0)

    # When another is created
    behind = create(emu, url).json()["id"]

    # Then it stays queued behind the stuck one (it holds the only slot), and waiting for idle returns
    emu.wait_until(lambda: plan(emu)["overall"]["waiting_for_slot"] == 1)
    emu.wait_idle()
    assert (status(emu, stuck), status(emu, behind)) == ("rendering", "queued")
    assert events(receiver) == [("image.started", stuck)]

    # When the plan grows, the queued one renders and completes
    emu.configure(plan_concurrency=2)
    assert emu.wait_for_status(behind).status == "complete"


def test_unlimited_plan_still_counts_the_highest_concurrency(emu: EmulatorServer, files: StaticFileServer) -> None:
    # Given no plan limit (the default), and three held renders
    urls = [files.add(p, image_bytes(), held=True) for p in input_paths(3)]
    ids = [create(emu, url).json()["id"] for url in urls]

    # When all three are rendering, then nothing waits and the maximum is 3, in the full state too
    emu.wait_until(lambda: plan(emu)["overall"]["rendering"] == 3)
    for p in input_paths(3):
        files.release(p)
    for pid in ids:
        emu.wait_for_status(pid)
    state = requests.get(f"{emu.base_url}/_emulator/state").json()
    assert state["plan"]["plan_concurrency"] == 0
    assert state["plan"]["overall"]["max_concurrent_rendering"] == 3
    assert emu.plan_stats().overall.max_concurrent_rendering == 3


def test_plan_settings_are_validated(emu: EmulatorServer) -> None:
    for bad in ({"plan_mode": "drop"}, {"plan_concurrency": -1}):
        resp = requests.post(f"{emu.base_url}/_emulator/config", json=bad)
        assert resp.status_code == 400
