"""IAM in front of moto: every request signed by a function's credentials is allowed or refused as IAM would.

A WSGI middleware around moto's app (``local_stack.aws.make_app``). The principal is the access key that signed
the request — the SigV4 ``Authorization`` header, or a presigned URL's ``X-Amz-Credential`` (so the GET Magic Hour
makes with a URL the submit function signed is checked against the submit role, as on AWS). Keys the registry does
not know (the harness's, the tests', the operator CLI's) are the account's administrator and pass unchecked.

What it adds to moto, with the AWS documentation it follows:

* identity-policy evaluation with resources and conditions (policy.py) over the calls mapped in requests.py; a
  refused call answers the service's AccessDenied error;
* S3's answer for a missing key: "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status
  code 403 Access Denied error" (GetObject / HeadObject API reference, "Permissions") — moto answers 404 to all;
* a count of every checked call per principal, and which grant allowed it (the mutation check's evidence).

Not modelled: resource policies (bucket, queue and key policies; only identity policies are evaluated), SCPs,
permission boundaries, session policies. The control endpoints under ``/_cutout/iam/`` take principals and give
the report; only unsigned or administrator requests reach them.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cutout_dev.local_stack.iam.policy import Grant, Policies, Request
from cutout_dev.local_stack.iam.requests import ACCOUNT, REGION, Call, access_key_of, describe, signing_service

CONTROL_PREFIX = "/_cutout/iam/"
_S3_READS = {"GetObject", "GetObjectVersion", "HeadObject"}


@dataclass(frozen=True)
class Principal:
    access_key: str
    name: str  # the function's logical id
    arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<function>
    policies: Policies


# Every refusal this process's local IAM made, and those its moto children reported when they stopped: the suite
# fails a test during which a function was refused anything (tests/conftest.py), so a refusal the code swallows
# (a best-effort publish, a retried read) still fails a test, and the mutation check sees it.
SEEN_REFUSALS: list[dict[str, str]] = []
_seen_lock = threading.Lock()


def note_refusals(refusals: Iterable[dict[str, str]]) -> None:
    with _seen_lock:
        SEEN_REFUSALS.extend(refusals)


class Report:
    """Counts of checked and refused calls per principal, and the grants each allowed call relied on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.checked: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.refusals: list[dict[str, str]] = []
        # (principal, policy, sid, action entry) -> test id -> calls for which it was the only grant
        self.sole: dict[tuple[str, str, str, str], Counter[str]] = defaultdict(Counter)
        self.used: Counter[tuple[str, str, str, str]] = Counter()
        # (principal, action, resource, leading-key shape) -> count: what each function really asks for
        self.calls: Counter[tuple[str, str, str, str]] = Counter()

    def record(self, principal: str, call: Call, refused: str | None, grants: Iterable[tuple[Grant, ...]]) -> None:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        with self._lock:
            self.checked[principal] += 1
            if refused is not None:
                self.refused[principal] += 1
                refusal = {"principal": principal, "operation": call.operation, "why": refused, "test": test}
                if len(self.refusals) < 5000:
                    self.refusals.append(refusal)
                note_refusals([refusal])
            for request in call.requests:
                self.calls[(principal, request.action, request.resource, _shape(request))] += 1
            for allowed_by in grants:
                for grant in allowed_by:
                    self.used[(principal, grant.policy, grant.sid, grant.action)] += 1
                # A call allowed by exactly one statement (through one action entry) fails without it.
                if len({(g.policy, g.sid) for g in allowed_by}) == 1 and len(allowed_by) == 1:
                    g = allowed_by[0]
                    self.sole[(principal, g.policy, g.sid, g.action)][test] += 1

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "checked": dict(self.checked),
                "refused": dict(self.refused),
                "refusals": list(self.refusals),
                "used": [[*k, n] for k, n in self.used.items()],
                "sole": [[*k, dict(tests)] for k, tests in self.sole.items()],
                "calls": [[*k, n] for k, n in self.calls.items()],
            }


_JOB_ID = re.compile(r"[0-9a-f]{32}")


def _shape(request: Request) -> str:
    """The kinds of item a DynamoDB request names: a job id, or a counter's prefix (``slot#``, ``budget#``)."""
    kinds = set()
    for key in request.context.get("dynamodb:leadingkeys", ()):
        kinds.add("<job>" if _JOB_ID.fullmatch(key) else key.split("#", 1)[0] + "#" if "#" in key else key)
    return ",".join(sorted(kinds))


class Registry:
    def __init__(self) -> None:
        self._by_key: dict[str, Principal] = {}
        self._lock = threading.Lock()
        self.report = Report()

    def put(self, principals: Iterable[Principal]) -> None:
        with self._lock:
            for p in principals:
                self._by_key[p.access_key] = p

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()

    def get(self, access_key: str | None) -> Principal | None:
        return self._by_key.get(access_key or "")


def _key_schema(table: str, index: str | None) -> str | None:
    """The partition key attribute of a table or index, from moto's own backend (this process's)."""
    from moto.dynamodb.models import dynamodb_backends

    name = table.rsplit("/", 1)[-1]
    try:
        found = dynamodb_backends[ACCOUNT][REGION].get_table(name)
    except Exception:  # an unknown table: moto answers ResourceNotFound itself
        return None
    if index is None:
        return str(found.hash_key_attr)
    for candidate in [*(found.global_indexes or []), *(found.indexes or [])]:
        if candidate.name == index:
            return next((str(k["AttributeName"]) for k in candidate.schema if k["KeyType"] == "HASH"), None)
    return None


def _secret_arn(secret_id: str) -> str:
    """IAM authorises a secret by its full ARN, whatever the request names it by (name, partial or full ARN).
    Not cached: a reset account re-creates a secret under the same name with a new ARN suffix."""
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        return str(secretsmanager_backends[ACCOUNT][REGION].secrets[secret_id].arn)
    except Exception:  # no such secret: authorise against a name-shaped ARN; moto answers ResourceNotFound
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_id}"


def _denied_response(service: str, message: str, head: bool) -> tuple[str, list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    if service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        return "403 Forbidden", headers, b"" if head else body
    if service == "sqs":
        # SQS's JSON protocol keeps the query API's code in x-amzn-query-error (botocore reads it).
        payload = {"__type": "com.amazon.coral.service#AccessDeniedException", "message": message}
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-error", "AccessDenied;Sender")]
        return "403 Forbidden", [*headers, ("x-amzn-RequestId", request_id)], json.dumps(payload).encode()
    payload = {"__type": "com.amazon.coral.service#AccessDeniedException", "message": message}
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)]
    return "400 Bad Request", headers, json.dumps(payload).encode()


def _message(principal: Principal, request: Request, explicit: bool) -> str:
    # AWS's wording for identity-policy refusals ("Access denied error messages", IAM User Guide).
    why = (
        "with an explicit deny in an identity-based policy"
        if explicit
        else f"because no identity-based policy allows the {request.action} action"
    )
    return f"User: {principal.arn} is not authorized to perform: {request.action} on resource: {request.resource} {why}"


class Enforcer:
    """The WSGI middleware. ``registry`` is shared with the control endpoints."""

    def __init__(self, app: Callable[..., Any], registry: Registry | None = None) -> None:
        self._app = app
        self.registry = registry or Registry()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        key = access_key_of(environ)
        principal = self.registry.get(key)
        if path.startswith(CONTROL_PREFIX) and principal is None:
            return self._control(environ, start_response, path[len(CONTROL_PREFIX) :])
        if principal is None:
            return self._app(environ, start_response)  # type: ignore[no-any-return]
        # S3 is authorised from the method, path and headers: its bodies (images) stream through unread.
        body = b"" if signing_service(environ) == "s3" else _read_body(environ)
        call = describe(environ, body, schema=_key_schema, secret_arn=_secret_arn)
        head = environ.get("REQUEST_METHOD") == "HEAD"
        if call.unmapped:
            why = f"the local IAM cannot tell what {call.unmapped} needs (map it in local_stack/iam/requests.py)"
            self.registry.report.record(principal.name, call, why, ())
            status, headers, payload = _denied_response(call.service, f"User: {principal.arn}: {why}", head)
            start_response(status, [*headers, ("Content-Length", str(len(payload)))])
            return [payload]
        grants: list[tuple[Grant, ...]] = []
        for request in call.requests:
            decision = principal.policies.decide(request)
            if not decision.allowed:
                message = _message(principal, request, decision.explicit_deny)
                self.registry.report.record(principal.name, call, message, grants)
                status, headers, payload = _denied_response(call.service, message, head)
                start_response(status, [*headers, ("Content-Length", str(len(payload)))])
                return [payload]
            grants.append(decision.grants)
        self.registry.report.record(principal.name, call, None, grants)
        if call.service == "s3" and call.operation in _S3_READS:
            return self._s3_read(environ, start_response, principal, call.requests[0], head)
        return self._app(environ, start_response)  # type: ignore[no-any-return]

    def _s3_read(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        principal: Principal,
        request: Request,
        head: bool,
    ) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        chunks = list(self._app(environ, capture))
        if str(captured.get("status", "")).startswith("404"):
            bucket_arn = request.resource.split("/", 1)[0]
            listing = Request("s3:ListBucket", bucket_arn)
            decision = principal.policies.decide(listing)
            # The 404 a caller sees rests on its ListBucket grant: recorded as a use, so the mutation check
            # shows the grant is needed (without it the same read is a 403), and as a refusal when it is missing:
            # the caller gets AccessDenied, which the soak's IAM check and the suite's refusal guard must count.
            refused = None if decision.allowed else _message(principal, listing, decision.explicit_deny)
            self.registry.report.record(
                principal.name, Call("s3", "ListBucket (missing key)", (listing,)), refused, [decision.grants]
            )
            if refused is not None:
                message = "Access Denied"  # what S3 says here: it will not tell a caller that a key is absent
                status, headers, payload = _denied_response("s3", message, head)
                start_response(status, [*headers, ("Content-Length", str(len(payload)))])
                return [payload]
        start_response(captured["status"], captured["headers"])
        return chunks

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any], action: str) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if action == "principals" and method == "POST":
            payload = json.loads(_read_body(environ) or b"{}")
            self.registry.put(
                Principal(
                    access_key=p["access_key"],
                    name=p["name"],
                    arn=p["arn"],
                    policies=Policies.parse((str(n), d) for n, d in p["documents"]),
                )
                for p in payload.get("principals", [])
            )
            body = b'{"ok": true}'
        elif action == "principals" and method == "DELETE":
            self.registry.clear()
            body = b'{"ok": true}'
        elif action == "report" and method == "GET":
            body = json.dumps(self.registry.report.as_json()).encode()
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "unknown control action"}']
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and put it back for moto."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ.get("wsgi.input")
    body = stream.read(length) if stream is not None and length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def principal_payload(principals: Iterable[Mapping[str, Any]]) -> bytes:
    return json.dumps({"principals": list(principals)}).encode()
