"""Opting in to the real, paid Magic Hour API from the demo and ``cutout local up`` — never by surprise.

The local stack talks to the emulator unless the caller asks for the real API explicitly (``--real-magic-hour``);
having ``MAGIC_HOUR_API_KEY`` exported is not asking. Asking takes two more things:

* a confirmation that names what may be spent (Magic Hour charges 5 credits an image when the create is made),
  typed at a terminal or given up front with ``--yes`` (without a terminal and without ``--yes`` the run refuses);
* a reachable API that accepts the key, checked before anything starts with one call that spends nothing
  (``GET /v1/image-projects/{id}`` of an id that does not exist: 404 with a valid key, 401 with a bad one), bounded
  in time as a whole. Without it a machine with no network only finds out inside the submit function, whose
  client retries connection failures with backoff for every upload, for minutes.

``MAGIC_HOUR_BASE_URL`` points "real" mode at another server speaking the API (the tests use the emulator), so the
mode stays testable offline.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import NamedTuple, TextIO

import requests
from cutout.magic_hour.client import CREDITS_PER_IMAGE

from cutout_dev.local_stack.stack import REAL_MAGIC_HOUR_URL

PREFLIGHT_SECONDS = 8.0  # the whole check, DNS included: name resolution has no timeout of its own in requests
PREFLIGHT_PROJECT_ID = "cutout-preflight-no-such-project"


class RealApiRefused(Exception):
    """The real API was asked for but may not or cannot be used; ``str()`` is the one line to print."""


class RealApiTarget(NamedTuple):
    base_url: str
    api_key: str


def target_from_env() -> RealApiTarget:
    """The API and key real mode would use (as LocalStack reads them); refuses without a key."""
    api_key = os.environ.get("MAGIC_HOUR_API_KEY", "")
    if not api_key:
        raise RealApiRefused("--real-magic-hour needs MAGIC_HOUR_API_KEY in the environment")
    return RealApiTarget(os.environ.get("MAGIC_HOUR_BASE_URL") or REAL_MAGIC_HOUR_URL, api_key)


def spend_sentence(images: int | None) -> str:
    """What the run may spend, in credits: a known number of images, or 5 per image uploaded."""
    if images is None:
        return f"{CREDITS_PER_IMAGE} credits for every image you upload while it runs"
    return f"up to {images * CREDITS_PER_IMAGE} credits ({images} images x {CREDITS_PER_IMAGE} credits)"


def confirm(
    target: RealApiTarget,
    images: int | None,
    *,
    assume_yes: bool,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> None:
    """Ask before spending; raise RealApiRefused unless the answer is yes (or ``assume_yes``)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    spend = spend_sentence(images)
    if assume_yes:
        print(f"Real Magic Hour at {target.base_url}: this run may spend {spend} (--yes given).", file=stdout)
        return
    if not stdin.isatty():
        raise RealApiRefused(
            f"the real Magic Hour API may spend {spend}; not a terminal, so add --yes to confirm "
            "(or drop --real-magic-hour to use the emulator, which is free)"
        )
    stdout.write(f"This calls the real Magic Hour API at {target.base_url} and may spend {spend}. Continue? [y/N] ")
    stdout.flush()
    answer = stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise RealApiRefused("not confirmed: nothing started, nothing spent")


def ask_for_real_api(images: int | None, *, assume_yes: bool) -> RealApiTarget:
    """Everything before a run that may spend: the key, the confirmation, then the preflight (in that order, so a
    refusal costs no network call and a confirmed run still fails fast)."""
    target = target_from_env()
    confirm(target, images, assume_yes=assume_yes)
    preflight(target)
    return target


def preflight(target: RealApiTarget, *, seconds: float = PREFLIGHT_SECONDS) -> None:
    """Reach the API and check the key with a call that spends nothing; RealApiRefused in one line otherwise."""
    outcome: list[Callable[[], None]] = []

    def probe() -> None:
        url = f"{target.base_url.rstrip('/')}/v1/image-projects/{PREFLIGHT_PROJECT_ID}"
        try:
            response = requests.get(
                url,
                headers={"Authorization": f"Bearer {target.api_key}"},
                timeout=(seconds / 2, seconds / 2),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            reason = type(exc).__name__
            outcome.append(lambda: _refuse(f"cannot reach {target.base_url} ({reason})"))
            return
        status = response.status_code
        if status == 401:
            outcome.append(lambda: _refuse(f"{target.base_url} refused MAGIC_HOUR_API_KEY (401 Unauthorized)"))
        elif status != 404:  # a valid key asking for a project that does not exist
            outcome.append(lambda: _refuse(f"{target.base_url} answered {status} to a key check (expected 404)"))
        else:
            outcome.append(lambda: None)

    # A thread, so that the bound covers name resolution too (getaddrinfo cannot be interrupted).
    worker = threading.Thread(target=probe, name="magic-hour-preflight", daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        _refuse(f"cannot reach {target.base_url} within {seconds:g} s (no network?)")
    outcome[0]()


def _refuse(reason: str) -> None:
    raise RealApiRefused(f"{reason}; nothing started, nothing spent (drop --real-magic-hour to use the emulator)")
