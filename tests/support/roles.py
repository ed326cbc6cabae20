"""The functions' roles from template.yaml, registered with moto's IAM for the test being run.

Two ways a test's code runs as a function's role: a handler loaded by ``lambda_loader.cold_start`` runs under its
own role, as in the local stack; domain code a test drives directly (a use case, the admission, the store) runs as
the function the test names, with ``@pytest.mark.function_role("submit")`` on the test (or module) or
``with function_role("finalize"):`` around a step (local_stack/iam/domain_calls.py does the signing). A test that
drives domain code with no role has each such call refused and fails; one that must run it unrestricted says so,
with its reason: ``@pytest.mark.unrestricted_aws("why")``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache

from cutout_dev.local_stack.aws import REGION
from cutout_dev.local_stack.config import PROJECT_ROOT
from cutout_dev.local_stack.iam.domain_calls import DOMAIN_CALLS, NO_ROLE
from cutout_dev.local_stack.iam.principals import register, role_session_arn
from cutout_dev.local_stack.iam.roles import environment_resolver, function_roles
from cutout_dev.local_stack.intrinsics import ACCOUNT_ID
from cutout_dev.local_stack.template import TranslatedTemplate, translate

FUNCTIONS = ("submit", "webhook", "poll", "finalize", "sweeper")

# The test account's resources under the names the template's environment gives them (the `aws` fixture fills it):
# a test that drives the admission needs no JOBS_TABLE in its environment to be scoped to the table.
ACCOUNT_ENVIRONMENT: dict[str, str] = {}


@cache
def template() -> TranslatedTemplate:
    return translate(PROJECT_ROOT / "template.yaml", {})


def function_id(function: str) -> str:
    """``submit`` -> ``SubmitFunction`` (the template's logical id); a logical id is returned as it is."""
    if function.endswith("Function"):
        return function
    if function not in FUNCTIONS:
        raise ValueError(f"{function!r} is none of the functions {FUNCTIONS}")
    return f"{function.capitalize()}Function"


def _secret_arn(name: str) -> str:
    import boto3
    from botocore.exceptions import ClientError

    # A session of the harness's own: tests that count the function's calls watch the default session.
    try:
        arn: str = boto3.Session().client("secretsmanager").describe_secret(SecretId=name)["ARN"]
    except ClientError:  # deleted, or never made: the ARN the local IAM authorises a missing secret by
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}"
    return arn


def register_role(logical_id: str, environment: Mapping[str, str]) -> None:
    """The function's role from template.yaml, its resources learned from ``environment`` (what the test gave the
    function), registered with moto's IAM: calls signed as that function are allowed or refused as on AWS."""
    endpoints = [os.environ["AWS_ENDPOINT_URL"]]
    if logical_id == NO_ROLE:  # no statement at all: IAM's implicit deny for every call
        arn = role_session_arn("no-function-role", "domain-code-run-outside-a-function", ACCOUNT_ID)
        register(endpoints, {NO_ROLE: []}, arns={NO_ROLE: arn})
        return
    translated = template()
    resolve = environment_resolver(
        translated, logical_id, environment, secret_arn=_secret_arn, region=REGION, account=ACCOUNT_ID
    )
    roles = function_roles(translated, lambda _f: resolve, [logical_id])
    arn = role_session_arn(f"test-{logical_id}Role", f"test-{logical_id}", ACCOUNT_ID)
    register(endpoints, roles, arns={logical_id: arn})


class RoleRegistrations:
    """The roles registered for the test being run: each when its domain code first calls AWS (the account is made
    by then), and again if the environment the function reads changed since (the process's environment, over the
    account's, is what the function was given)."""

    def __init__(self) -> None:
        self.done: dict[str, tuple[str | None, ...]] = {}

    def ensure(self, logical_id: str) -> None:
        environment = {**ACCOUNT_ENVIRONMENT, **os.environ}
        names = () if logical_id == NO_ROLE else sorted(template().functions[logical_id].environment)
        seen = tuple(environment.get(name) for name in names)
        if self.done.get(logical_id) != seen:
            register_role(logical_id, environment)
            self.done[logical_id] = seen


REGISTRATIONS = RoleRegistrations()


def start_test(role: str | None, *, unrestricted: bool) -> None:
    """A test begins: its domain calls run as ``role`` (a function's name), or are let through unrestricted."""
    REGISTRATIONS.done.clear()
    DOMAIN_CALLS.ensure_role = REGISTRATIONS.ensure
    DOMAIN_CALLS.reset(guarding=True, role=None if role is None else function_id(role), unrestricted=unrestricted)


def unscoped_calls() -> list[str]:
    """The call sites of domain code that called AWS in this test with no function's role (each was refused)."""
    return list(DOMAIN_CALLS.unscoped)


@contextmanager
def function_role(function: str) -> Iterator[None]:
    """Domain code the test drives in this block (in any thread) runs as ``function``'s role."""
    saved = DOMAIN_CALLS.role
    DOMAIN_CALLS.role = function_id(function)
    try:
        yield
    finally:
        DOMAIN_CALLS.role = saved


@contextmanager
def operator() -> Iterator[None]:
    """Domain code in this block runs as the operator's commands run it (``cutout retry``, ``cutout status``): with
    the operator's own credentials, the account's administrator here, not a function's role."""
    saved = DOMAIN_CALLS.unrestricted
    DOMAIN_CALLS.unrestricted = True
    try:
        yield
    finally:
        DOMAIN_CALLS.unrestricted = saved


# Which function makes each of the store's moves in production (use_cases/*, admission/*), for tests of the
# state machine that make the moves themselves: each runs under that function's role, so a move its function
# may not make fails here as it would on AWS. A move several functions make runs as the one with the narrowest
# grant on job items (the webhook may only update them). Reads for the test's own assertions run as the operator.
STORE_MOVES: dict[str, str | None] = {
    "claim": "submit",
    "wait": "submit",
    "dispatch": "submit",
    "back_to_waiting": "submit",
    "release_claim": "submit",
    "reject": "submit",
    "reject_by_magic_hour": "submit",
    "mark_queued": "submit",
    "mark_ambiguous": "submit",
    "mark_progress": "webhook",  # also the poll's and the finalize's
    "adopt_ambiguous": "finalize",
    "fail": "poll",  # also the finalize's and the sweeper's (terminal.py, sweep.py)
    "begin_finalize": "finalize",
    "end_finalize": "finalize",
    "complete": "finalize",
    "reopen_for_retry": None,  # `cutout retry`: the operator
    "get": None,  # the test's own reads, and `cutout status`
}


class StoreMovesAsItsFunctions:
    """A JobStore whose every move runs as the function that makes it in production (``STORE_MOVES``)."""

    def __init__(self, store: object) -> None:
        object.__setattr__(self, "_store", store)

    def __getattr__(self, name: str) -> object:
        target = getattr(self._store, name)
        if not callable(target) or name.startswith("_"):
            return target
        if name not in STORE_MOVES:
            raise AttributeError(f"JobStore.{name}: say in tests/support/roles.STORE_MOVES which function makes it")
        function = STORE_MOVES[name]

        def as_its_function(*args: object, **kwargs: object) -> object:
            with operator() if function is None else function_role(function):
                return target(*args, **kwargs)

        return as_its_function

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._store, name, value)  # a test replacing a method replaces the store's own
