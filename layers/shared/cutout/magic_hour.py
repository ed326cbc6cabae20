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
from typing import Any, NamedTuple
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from cutout.errors import (
    AmbiguousCreate,
    ConfigurationError,
    InputRejected,
    MalformedResponse,
    NotCreated,
    ProjectNotFound,
    TransientError,
)

CREATE_PATH = "/v1/image-background-remover"
PROJECT_PATH = "/v1/image-projects/{id}"
UPLOAD_URLS_PATH = "/v1/files/upload-urls"

CREDITS_PER_IMAGE = 5  # "Each image costs 5 credits." (magichour-api.md §1)
KNOWN_STATUSES = frozenset({"draft", "queued", "rendering", "complete", "error", "canceled"})
# Magic Hour documents these as "nothing was created, try again".
NOT_CREATED_STATUSES = frozenset({429, 502, 503})


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
        connect_timeout: float = 3.05,
        read_timeout: float = 20.0,
        create_retries: int = 3,
        backoff_factor: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = (connect_timeout, read_timeout)
        self._session = session or requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
        # The create: connect errors and the documented "nothing created" statuses only. read=0 and
        # other=0 mean a request that was sent is never re-sent by urllib3.
        self._create_retry = Retry(
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
        self._read_retry = Retry(
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
        if status in (401, 402, 403):
            raise ConfigurationError(message, status=status, code=f"http_{status}")
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
    def upload_asset(self, data: bytes, extension: str) -> str:
        """POST /v1/files/upload-urls + PUT; returns the `file_path` to pass as an asset."""
        try:
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
            put = requests.put(upload_url, data=data, timeout=(self._timeout[0], 120))
        except requests.exceptions.RequestException as exc:
            raise NotCreated(f"asset PUT failed: {type(exc).__name__}", code="upload_failed") from None
        if put.status_code >= 300:
            raise NotCreated(f"asset PUT answered {put.status_code}", status=put.status_code, code="upload_failed")
        return file_path


class MagicHourAccess:
    """One MagicHourClient per execution environment, built on first use with the API key from Secrets Manager.

    `forget()` after a 401 makes the next call re-read the key: it may have been rotated."""

    def __init__(self, base_url: str, api_key_secret_id: str) -> None:
        self.base_url = base_url
        self.api_key_secret_id = api_key_secret_id
        self._client: MagicHourClient | None = None

    def __call__(self, *, refresh: bool = False) -> MagicHourClient:
        if self._client is None or refresh:
            from cutout import secrets

            self._client = MagicHourClient(self.base_url, secrets.api_key(self.api_key_secret_id, force=refresh))
        return self._client

    def forget(self) -> None:
        self._client = None
