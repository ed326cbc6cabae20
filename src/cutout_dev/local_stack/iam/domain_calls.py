"""Calls the domain makes outside any running function (a test driving a use case directly) run as a role too.

Inside the local stack every function runs under ``acting_as`` (principals.py), so whatever its code calls is
signed with its role's credentials and checked by the local IAM. A test that drives the domain directly (a use
case, the admission, the store) has no function around it: without this, its calls are signed with the local dummy
credentials, the account's administrator, and a grant the function lacks on AWS goes unnoticed — the deploy-day
AccessDenied that only a direct-call path reaches.

While ``DOMAIN_CALLS.guarding`` is on (the test suite turns it on), a request signed with the local dummy
credentials whose call stack holds the domain's code (layers/shared/cutout, functions/) is signed instead as

* the function the test says that code runs as (``role``, process-wide so the test's threads share it), or
* ``NO_ROLE`` when the test said none: a principal with no statement, so the local IAM refuses the call (and the
  suite fails the test naming the call site), or
* the dummy credentials unchanged when the test opted out by name (``unrestricted``, with its reason).

Calls whose stack holds no domain code (a test seeding the table, reading results to assert) keep the dummy
credentials, as do domain calls made by the dev tooling (the operator CLI runs as the operator; the local stack
sets its functions' roles itself): a ``cutout_dev`` frame outside the domain's frames marks tooling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from cutout_dev.local_stack.config import PROJECT_ROOT

NO_ROLE = "NoFunctionRole"

_DOMAIN_ROOTS = (f"{PROJECT_ROOT / 'layers' / 'shared' / 'cutout'}/", f"{PROJECT_ROOT / 'functions'}/")
_TOOLING_ROOT = f"{Path(__file__).resolve().parents[2]}/"


def domain_call_site(frame: FrameType | None) -> str | None:
    """Where a call the domain makes on a function's behalf comes from (``entry -> ... -> innermost``, each
    ``file:line function``), or None: no domain code on the stack, or dev tooling called it."""
    sites: list[str] = []
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_DOMAIN_ROOTS):
            sites.append(f"{filename.rsplit('/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
        elif sites and filename.startswith(_TOOLING_ROOT):
            return None
        frame = frame.f_back
    if not sites:
        return None
    return sites[-1] if len(sites) == 1 else f"{sites[-1]} -> ... -> {sites[0]}"


class DomainCalls:
    """The process's answer to "whose role signs this domain call?" while a test runs (see the module doc)."""

    def __init__(self) -> None:
        self.guarding = False
        self.role: str | None = None  # a function's logical id, e.g. SubmitFunction
        self.unrestricted = False
        self.unscoped: list[str] = []  # call sites of domain calls made with no role, for the test's failure
        # Registers a role with the local IAM the first time a test's domain code needs it (the account's
        # resources, hence the role's ARNs, are known only once the test has made them).
        self.ensure_role: Callable[[str], None] = lambda _role: None
        self._lock = threading.RLock()
        self._registering = threading.local()

    def reset(self, *, guarding: bool, role: str | None = None, unrestricted: bool = False) -> None:
        with self._lock:
            self.guarding, self.role, self.unrestricted = guarding, role, unrestricted
            self.unscoped = []

    def principal(self, frame: FrameType | None) -> str | None:
        """The role to sign with, for a request whose caller's frame is ``frame``; None: leave the credentials."""
        if not self.guarding or self.unrestricted or getattr(self._registering, "on", False):
            return None
        site = domain_call_site(frame)
        if site is None:
            return None
        role = self.role or NO_ROLE
        with self._lock:
            if role == NO_ROLE:
                self.unscoped.append(site)
            self._registering.on = True
            try:
                self.ensure_role(role)
            finally:
                self._registering.on = False
        return role


DOMAIN_CALLS = DomainCalls()
