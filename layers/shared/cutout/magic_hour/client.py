"""Magic Hour REST client (requests + urllib3 Retry), with errors typed by what they mean for money.

Why not the official SDK: it has no retries, no connect/read split, pulls in httpx + pydantic (cold start),
and its wait loop has no overall timeout. The contract is small (four calls), so a thin client is safer.

The create is retried only where the request provably did not reach Magic Hour (connection refused /
connect timeout) or Magic Hour said it did nothing (429, 502, 503: "no job was created"). Anything else
after the bytes left — a read timeout, a reset, a 500 — is `AmbiguousCreate`: the caller records it and
never re-creates blindly, because there is no idempotency key and no list endpoint.
"""

# No `from __future__ import annotations` in this module: a NamedTuple turns string annotations into ForwardRefs,
# compiling each one (~12 us a field at cold start; ~0.1 ms here). Forward references are quoted.
import json
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import IO, Any, NamedTuple
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from cutout.domain.errors import (
    AccountRefused,
    AmbiguousCreate,
    InputRejected,
    MalformedResponse,
    NotCreated,
    ProjectNotFound,
    TransientError,
)
from cutout.magic_hour.upload_put import put_with_length

CREATE_PATH = "/v1/image-background-remover"
PROJECT_PATH = "/v1/image-projects/{id}"
UPLOAD_URLS_PATH = "/v1/files/upload-urls"

CREDITS_PER_IMAGE = 5  # "Each image costs 5 credits." (Magic Hour's pricing for the background remover)
KNOWN_STATUSES = frozenset({"draft", "queued", "rendering", "complete", "error", "canceled"})
# Magic Hour documents these as "nothing was created, try again".
NOT_CREATED_STATUSES = frozenset({429, 502, 503})

# What one call may take, and so what a caller must have left before starting one (time_budget.py). An attempt
# takes at most CONNECT_TIMEOUT + READ_TIMEOUT (requests' read timeout bounds each wait for bytes; Magic Hour's
# JSON answers are a few hundred bytes, so a trickling answer is what the callers' margin is for). A retry is
# started only while RETRY_WINDOW_SECONDS have not passed since the call began (`_WindowedRetry`): the fast
# failures retries are for (connection refused, an immediate 429/502/503) fit in it, a slow one ends the call.
CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 20.0
RETRY_WINDOW_SECONDS = 2.5
# With the window above: waits of 0, <= 0.75 and <= 1.25 s before the three retries (urllib3: factor * 2^(n-1)
# plus up to `jitter`), so three fast failures are all retried inside the window.
BACKOFF_FACTOR = 0.25
CREATE_RETRIES = 3


def worst_case_seconds(connect_timeout: float, read_timeout: float, retry_window: float) -> float:
    """The longest one call can take: its last attempt starts within the retry window and takes at most a connect
    and a read timeout."""
    return retry_window + connect_timeout + read_timeout


WORST_CASE_CALL_SECONDS = worst_case_seconds(CONNECT_TIMEOUT, READ_TIMEOUT, RETRY_WINDOW_SECONDS)

# When the current call began (per thread: the local stack runs invocations as threads), for `_WindowedRetry`.
_call_started: ContextVar[float | None] = ContextVar("magic_hour_call_started", default=None)


class _WindowedRetry(Retry):
    """urllib3's Retry, plus: no retry starts after `retry_window` seconds of the call, and a Retry-After is
    honoured only up to what is left of the window (and `backoff_max`). urllib3 bounds retries by count only, so a
    slow 503 retried three times could take four read timeouts; this bounds the whole call (WORST_CASE_...)."""

    def __init__(self, *args: Any, retry_window: float = RETRY_WINDOW_SECONDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_window = retry_window

    def new(self, **kw: Any) -> "_WindowedRetry":
        kw.setdefault("retry_window", self.retry_window)
        return super().new(**kw)

    def _elapsed(self) -> float | None:
        started = _call_started.get()
        return None if started is None else time.monotonic() - started

    def is_exhausted(self) -> bool:
        if super().is_exhausted():
            return True
        elapsed = self._elapsed()
        if elapsed is None or not self.history:
            return False
        # The longest backoff urllib3 may sleep before this retry (its jitter included): the retry must start
        # inside the window.
        errors = len(self.history)
        longest_wait = 0.0 if errors <= 1 else self.backoff_factor * 2 ** (errors - 1) + self.backoff_jitter
        return elapsed + min(self.backoff_max, longest_wait) > self.retry_window

    def get_retry_after(self, response: Any) -> float | None:
        wanted = super().get_retry_after(response)
        if wanted is None:
            return None
        elapsed = self._elapsed()
        left = self.retry_window - elapsed if elapsed is not None else self.backoff_max
        return max(0.0, min(wanted, self.backoff_max, left))


class _CallClock:
    """Marks the start of one call for `_WindowedRetry` (a context manager, reset however the call ends)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _call_started.set(time.monotonic())

    def __exit__(self, *exc: object) -> None:
        _call_started.reset(self._token)


# NamedTuples rather than frozen dataclasses: ~0.2 ms each at import instead of ~0.65 (cold start; see job.py).
class CreateResult(NamedTuple):
    project_id: str
    credits_charged: int


class Project(NamedTuple):
    id: str
    status: str
    name: str | None
    credits_charged: int
    downloads: list[dict[str, Any]]
    error: dict[str, Any] | None
    raw: dict[str, Any]  # the whole body, as received (left out of the repr: it repeats the fields above)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields[:-1], self[:-1], strict=True))
        return f"Project({shown})"

    @property
    def error_code(self) -> str | None:
        return str(self.error.get("code")) if self.error else None

    @property
    def error_message(self) -> str | None:
        return str(self.error.get("message")) if self.error else None


def parse_project(body: object) -> Project:
    """Validate a GET /v1/image-projects/{id} body (also the webhook payload)."""
    if not isinstance(body, dict):
        raise MalformedResponse("project body is not a JSON object", code="malformed_response")
    pid, status = body.get("id"), body.get("status")
    if not isinstance(pid, str) or not pid:
        raise MalformedResponse("project body has no id", code="malformed_response")
    if status not in KNOWN_STATUSES:
        raise MalformedResponse(f"unknown project status {status!r}", code="unknown_status")
    downloads = body.get("downloads") or []
    if not isinstance(downloads, list) or not all(
        isinstance(d, dict) and isinstance(d.get("url"), str) for d in downloads
    ):
        raise MalformedResponse("downloads is not a list of {url, expires_at}", code="malformed_response")
    error = body.get("error")
    if error is not None and not isinstance(error, dict):
        raise MalformedResponse("error is not an object", code="malformed_response")
    credits = body.get("credits_charged")
    return Project(
        id=pid,
        status=str(status),
        name=body.get("name") if isinstance(body.get("name"), str) else None,
        credits_charged=credits if isinstance(credits, int) and not isinstance(credits, bool) else 0,
        downloads=list(downloads),
        error=error,
        raw=body,
    )


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:1000]
    return json.dumps(body)[:300]


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when urllib3 failed to connect at all, i.e. no byte of the request reached Magic Hour."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


class MagicHourClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        create_retries: int = CREATE_RETRIES,
        backoff_factor: float = BACKOFF_FACTOR,
        retry_window: float = RETRY_WINDOW_SECONDS,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._timeout = (connect_timeout, read_timeout)
        self.worst_case_seconds = worst_case_seconds(connect_timeout, read_timeout, retry_window)
        # Called with the key Magic Hour answered 401 to (MagicHourAccess re-reads the secret).
        self.on_unauthorized: Callable[[str], None] | None = None
        self._session = session or requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
        # The create: connect errors and the documented "nothing created" statuses only. read=0 and
        # other=0 mean a request that was sent is never re-sent by urllib3.
        self._create_retry = _WindowedRetry(
            retry_window=retry_window,
            total=create_retries,
            connect=create_retries,
            read=0,
            other=0,
            redirect=0,
            status=create_retries,
            status_forcelist=NOT_CREATED_STATUSES,
            allowed_methods=frozenset({"POST"}),
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_factor,
            backoff_max=8,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        # Reads are idempotent: retry network errors and 429/5xx.
        self._read_retry = _WindowedRetry(
            retry_window=retry_window,
            total=create_retries,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_factor,
            backoff_max=8,
            status_forcelist=frozenset({429, 500, 502, 503, 504}),
            allowed_methods=frozenset({"GET", "DELETE"}),
            raise_on_status=False,
        )
        self._create_session = self._session
        self._session.mount(self.base_url + CREATE_PATH, HTTPAdapter(max_retries=self._create_retry))
        self._session.mount(self.base_url + UPLOAD_URLS_PATH, HTTPAdapter(max_retries=self._create_retry))
        self._session.mount(self.base_url + "/", HTTPAdapter(max_retries=self._read_retry))

    # ----- create ------------------------------------------------------------------------------------
    def create(self, image_url: str, *, name: str, background_url: str | None = None) -> CreateResult:
        assets = {"image_file_path": image_url}
        if background_url:
            assets["background_image_file_path"] = background_url
        try:
            with _CallClock():
                resp = self._session.post(
                    self.base_url + CREATE_PATH, json={"name": name, "assets": assets}, timeout=self._timeout
                )
        except requests.exceptions.ConnectionError as exc:
            if _never_sent(exc):
                raise NotCreated(f"Magic Hour unreachable: {type(exc).__name__}", code="unreachable") from None
            raise AmbiguousCreate(f"connection failed after sending: {type(exc).__name__}") from None
        except requests.exceptions.Timeout as exc:
            raise AmbiguousCreate(f"no answer within {self._timeout[1]} s ({type(exc).__name__})") from None
        except requests.exceptions.RequestException as exc:
            raise AmbiguousCreate(f"request failed after sending: {type(exc).__name__}") from None
        status = resp.status_code
        if status == 200:
            try:
                body = resp.json()
            except ValueError:
                raise AmbiguousCreate("200 with a body that is not JSON", status=200) from None
            pid = body.get("id") if isinstance(body, dict) else None
            if not isinstance(pid, str) or not pid:
                raise AmbiguousCreate("200 without a project id", status=200)
            credits = body.get("credits_charged")
            # A body without credits_charged still cost the documented 5 credits: record what was spent.
            valid = isinstance(credits, int) and not isinstance(credits, bool)
            return CreateResult(pid, credits if valid else CREDITS_PER_IMAGE)
        self._raise_for(status, resp, creating=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for(self, status: int, resp: requests.Response, *, creating: bool) -> None:
        message = _message(resp)
        if status in (400, 422):
            raise InputRejected(message, status=status, code=f"http_{status}")
        if status == 401 and self.on_unauthorized is not None:
            self.on_unauthorized(self.api_key)
        if status in (401, 402, 403):
            raise AccountRefused(message, status=status, code=f"http_{status}")
        if status == 404 and not creating:
            raise ProjectNotFound(message, status=status, code="not_found")
        if creating and status in NOT_CREATED_STATUSES:
            raise NotCreated(f"{status} after retries: {message}", status=status, code=f"http_{status}")
        if creating:
            raise AmbiguousCreate(f"unexpected {status}: {message}", status=status, code=f"http_{status}")
        raise TransientError(f"unexpected {status}: {message}", status=status, code=f"http_{status}")

    # ----- reads ---------------------------------------------------------------------------------------
    def get_project(self, project_id: str) -> Project:
        try:
            with _CallClock():
                resp = self._session.get(
                    self.base_url + PROJECT_PATH.format(id=quote(project_id, safe="")),
                    timeout=self._timeout,
                )
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"GET project failed: {type(exc).__name__}", code="unreachable") from None
        if resp.status_code != 200:
            self._raise_for(resp.status_code, resp, creating=False)
        try:
            body = resp.json()
        except ValueError:
            raise MalformedResponse("GET project answered with non-JSON", code="malformed_response") from None
        return parse_project(body)

    # ----- asset upload (for buckets Magic Hour cannot read through a presigned URL) ----------------
    def upload_asset(self, data: "IO[bytes] | bytes", extension: str, size: int | None = None) -> str:
        """POST /v1/files/upload-urls + PUT; returns the `file_path` to pass as an asset. `data` may be a stream
        of `size` bytes (the S3 object's body): it is sent as it is read, so the function's memory does not bound
        the size of an upload."""
        try:
            with _CallClock():
                resp = self._session.post(
                    self.base_url + UPLOAD_URLS_PATH,
                    json={"items": [{"type": "image", "extension": extension}]},
                    timeout=self._timeout,
                )
        except requests.exceptions.RequestException as exc:
            raise NotCreated(f"upload-urls failed: {type(exc).__name__}", code="unreachable") from None
        if resp.status_code != 200:
            self._raise_for(resp.status_code, resp, creating=False)
        try:
            item = resp.json()["items"][0]
            upload_url, file_path = str(item["upload_url"]), str(item["file_path"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise MalformedResponse("upload-urls body does not match the contract") from None
        # The signed PUT URL carries its own auth: no Authorization header, no Content-Type required.
        try:
            put = put_with_length(upload_url, data, size, timeout=(self._timeout[0], 120))
        except requests.exceptions.RequestException as exc:
            raise NotCreated(f"asset PUT failed: {type(exc).__name__}", code="upload_failed") from None
        if put.status_code >= 300:
            raise NotCreated(f"asset PUT answered {put.status_code}", status=put.status_code, code="upload_failed")
        return file_path


# After a 401 the next call re-reads the key from Secrets Manager (force: the 5-minute cache may still hold the key
# an operator just replaced with `put-secret-value`), but at most once per this many seconds per execution
# environment: a key that is really bad costs each warm environment at most two GetSecretValue a minute (plus the
# cache's own refresh), however many records fail, and a fix is seen within this bound even right after a re-read.
FORCED_REREAD_INTERVAL_SECONDS = 30.0


class MagicHourAccess:
    """One MagicHourClient per execution environment, built on first use with the API key from Secrets Manager.

    A 401 (from any call: the client reports it) makes the next call rebuild the client from a forced re-read of
    the key, bounded by FORCED_REREAD_INTERVAL_SECONDS; within the bound the cached value is used."""

    worst_case_seconds = WORST_CASE_CALL_SECONDS  # of one call of the clients built here (default timeouts)

    def __init__(
        self, base_url: str, api_key_secret_id: str, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.base_url = base_url
        self.api_key_secret_id = api_key_secret_id
        self._client: MagicHourClient | None = None
        self._monotonic = monotonic
        self._rejected_key: str | None = None  # the key Magic Hour answered 401 to, until a rebuild
        self._last_forced: float | None = None
        self._lock = threading.Lock()  # invocations are threads of one process in the local stack

    def __call__(self, *, refresh: bool = False) -> MagicHourClient:
        with self._lock:
            if self._client is None or refresh:
                from cutout.aws import secrets

                force = refresh or self._may_force()
                key = secrets.api_key(self.api_key_secret_id, force=force)
                client = MagicHourClient(self.base_url, key)
                client.on_unauthorized = self.unauthorized
                self._client = client
                self._rejected_key = None
            return self._client

    def _may_force(self) -> bool:
        """Force the read after a 401, unless the last forced read is younger than the interval."""
        if self._rejected_key is None:
            return False
        now = self._monotonic()
        if self._last_forced is not None and now - self._last_forced < FORCED_REREAD_INTERVAL_SECONDS:
            return False
        self._last_forced = now
        return True

    def unauthorized(self, key: str) -> None:
        """Magic Hour answered 401 to `key`: rebuild the client on the next call (a client built meanwhile from
        another key, by a concurrent invocation, is kept)."""
        with self._lock:
            if self._client is not None and self._client.api_key == key:
                self._client = None
                self._rejected_key = key

    def forget(self) -> None:
        """Rebuild the client on the next call, as after a 401."""
        with self._lock:
            if self._client is not None:
                self._rejected_key = self._client.api_key
            self._client = None
