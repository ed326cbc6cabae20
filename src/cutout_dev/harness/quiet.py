"""Waiting on the local stack: until it has been quiescent for a while (queues empty, nothing running, the
emulator idle), and progress lines on stderr while a harness waits."""

from __future__ import annotations

import sys
import time

from cutout_dev.local_stack import LocalStack


def say(progress: bool, text: str) -> None:
    """A progress line on stderr, when the harness shows progress."""
    if progress:
        print(text, file=sys.stderr, flush=True)


def wait_quiet(stack: LocalStack, deadline: float, settle: float = 2.0) -> bool:
    """True once the stack has stayed quiescent for `settle` seconds; False at the deadline."""
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if stack.quiescent():
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return True
        else:
            quiet_since = None
        time.sleep(0.25)
    return False
