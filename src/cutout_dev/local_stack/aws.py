"""Embedded AWS: moto's server on a free loopback port, and the process environment that points boto3 at it.

Server mode (rather than ``mock_aws``) is what makes the local stack behave like AWS for everything that talks
to it: S3 → EventBridge → SQS delivery happens inside moto, presigned URLs are real HTTP URLs the emulator can
fetch, and the aws CLI works against the same endpoint.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from typing import IO, Any

import boto3
import moto.dynamodb.models as dynamodb_models
from moto.core.utils import unix_time
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.s3.responses import S3Response
from moto.sqs.models import SQSBackend
from werkzeug.serving import BaseWSGIServer, make_server

log = logging.getLogger(__name__)

REGION = "us-east-1"

# Dummy credentials: moto accepts anything, and setting them stops botocore from searching the instance
# metadata service or a real profile (a slow, network-touching detour, and a risk of touching a real account).
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


class Arrivals:
    """Tells the local SQS pollers that a message may have arrived, so they receive at once instead of after their
    idle sleep: Lambda's pollers long-poll (a message is handed over as it arrives), the local ones short-poll
    (sqs_poller.py), and their 0.1 s idle sleep added up to 0.1 s per queue hop (two per image) that AWS does not.
    A stand-in for long polling, not a change of semantics: a poller still receives through moto as before; this
    only ends its sleep early. In-process only: with moto in its own process the pollers sleep as before."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.seq = 0

    def notify(self) -> None:
        with self._cond:
            self.seq += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Sleep up to `timeout`, less if something arrived since `seen` (a `seq` read before the last receive)."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq != seen, timeout)


ARRIVALS = Arrivals()
# The requests after which a queue may hold a new message: SQS sends, and S3 writes and EventBridge puts (moto
# delivers an object's event through EventBridge to SQS inside the S3 request).
_ARRIVING_TARGETS = ("AmazonSQS.SendMessage", "AWSEvents.PutEvents")


def _may_deliver(environ: dict[str, Any], target: str) -> bool:
    if target.startswith(_ARRIVING_TARGETS):
        return True
    if target or environ.get("REQUEST_METHOD") not in ("PUT", "POST"):
        return False
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    return "/s3/aws4_request" in auth or "Action=SendMessage" in str(environ.get("QUERY_STRING", ""))


class _Serialised:
    """WSGI wrapper that serialises what moto cannot do concurrently: DynamoDB and SQS requests.

    DynamoDB applies each conditional write atomically; moto's backend has no locking and moto server is
    threaded, so two concurrent conditional puts can both "succeed" — a race real DynamoDB never has. Cutout's
    guarantees (one claim per job, the budget counter, the finalize lease) rest on those conditions, so the
    emulated account must keep them. moto's SQS iterates a queue's message set while other requests change it
    ("RuntimeError: Set changed size during iteration", a 500 to ReceiveMessage under the soak's concurrency), so
    SQS requests take a lock of their own. Pollers receive with WaitTimeSeconds=0, so no request holds it for long.
    S3 and EventBridge stay concurrent.
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._locks = {"DynamoDB_": threading.Lock(), "AmazonSQS.": threading.Lock()}
        self._sqs_query = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        arriving = _may_deliver(environ, target)
        lock = next((lock for prefix, lock in self._locks.items() if target.startswith(prefix)), None)
        if lock is None and "/sqs/aws4_request" in str(environ.get("HTTP_AUTHORIZATION", "")):
            lock = self._sqs_query  # the SQS query protocol (no X-Amz-Target)
        if lock is None and not arriving:
            return self._app(environ, start_response)
        with lock or contextlib.nullcontext():
            # Materialise the body inside the lock: the backend does its work while it is produced.
            body = list(self._app(environ, start_response))
        if arriving:
            ARRIVALS.notify()
        return body


def _retained(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading the one attribute it needs.

    moto (5.2) checks each message it hands out against the queue's retention period by computing *every* queue
    attribute, ApproximateNumberOfMessages* included: a pass over the whole queue per message received. With a
    backlog of thousands (the flood) receiving became the local stack's largest cost (20 % of the process's
    time, py-spy), a cost real SQS does not have. Same answer, read directly."""
    queue = backend.get_queue(queue_name)
    retention = int(getattr(queue, "message_retention_period", 345_600))
    return bool(retention + message.sent_timestamp / 1000 > unix_time())


class _CopiesButTables:
    """`copy` as moto's DynamoDB models module sees it: everything is copied as ever except a whole table.

    moto (5.2) backs up every table a transaction names with `copy.deepcopy` before applying it, to roll back a
    cancelled one: a pass over the whole table per `TransactWriteItems`, under the lock that serialises DynamoDB
    here. With thousands of job records (the flood) each transaction took longer than the rest of a submit, a cost
    DynamoDB does not have (a transaction touches its items only). `_transact_write_items` backs up just the items
    a transaction names and restores them when it is cancelled: the same all-or-nothing outcome."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(obj: Any, memo: dict[int, Any] | None = None) -> Any:
        return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)


_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_items_only(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems, its rollback restoring the items it names (see `_CopiesButTables`)."""
    before: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        name = op.get("TableName")
        if name not in self.tables:
            continue
        table = self.tables[name]
        keys = [k for k in (table.hash_key_attr, table.range_key_attr) if k]
        key = op["Key"] if "Key" in op else {k: op["Item"][k] for k in keys if k in op.get("Item", {})}
        old = self.get_item(name, key)
        before.append((name, key, old.to_json()["Attributes"] if old is not None else None))
    try:
        _transact_write_items(self, transact_items)
    except Exception:
        for name, key, attrs in reversed(before):
            if attrs is None:
                with contextlib.suppress(Exception):
                    self.delete_item(name, key)
            else:
                self.put_item(name, attrs)
        raise


_get_bucket_notification = S3Response.get_bucket_notification


def _bucket_notification(self: S3Response) -> Any:
    """GetBucketNotificationConfiguration with the bucket's EventBridge setting.

    moto (5.2) stores ``EventBridgeConfiguration`` and delivers the bucket's events to EventBridge, but leaves it
    out of the GET's answer, which AWS includes ("GetBucketNotificationConfiguration", Amazon S3 API Reference):
    `cutout doctor` reads the setting there, so the local stack answers as AWS does."""
    answer = _get_bucket_notification(self)
    config = self.backend.get_bucket_notification_configuration(self.bucket_name)
    if config is None or config.event_bridge is None or not isinstance(answer, tuple) or len(answer) != 3:
        return answer
    status, headers, body = answer
    if not isinstance(body, str) or "<EventBridgeConfiguration" in body:
        return answer
    element = "<EventBridgeConfiguration/>"
    if body.rstrip().endswith("/>"):  # an otherwise empty configuration: <NotificationConfiguration .../>
        start = body.rstrip()[:-2]
        body = f"{start}>{element}</NotificationConfiguration>"
    else:
        body = body.replace("</NotificationConfiguration>", f"{element}</NotificationConfiguration>")
    return status, headers, body


def make_app() -> Any:
    """moto's WSGI app as the local stack serves it: IAM enforced for the functions' roles (iam/enforcer.py),
    DynamoDB's conditions atomic, SQS serialised, SQS receive O(1) a message, the bucket's EventBridge setting in
    its notification configuration, and DynamoDB transactions that copy the items they touch, not whole tables."""
    from cutout_dev.local_stack.iam.enforcer import Enforcer

    SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign,assignment]
    dynamodb_models.copy = _CopiesButTables()  # type: ignore[attr-defined,assignment]
    DynamoDBBackend.transact_write_items = _transact_items_only  # type: ignore[method-assign]
    S3Response.get_bucket_notification = _bucket_notification  # type: ignore[method-assign]
    return Enforcer(_Serialised(DomainDispatcherApplication(create_backend_app)))


def serve(port: int = 0) -> BaseWSGIServer:
    """A threaded server of ``make_app()`` on 127.0.0.1 (``port`` 0: one the OS chooses)."""
    return make_server("127.0.0.1", port, make_app(), threaded=True, request_handler=MotoRequestHandler)


class MotoServer:
    """A moto server bound to 127.0.0.1 on an OS-assigned port: a thread of this process, or a process of its own.

    The same WSGI app as ``moto.server.ThreadedMotoServer``, served here so that shutdown is prompt (a short
    ``poll_interval``) and the listening socket is closed (ThreadedMotoServer leaves it open).

    ``own_process``: moto in child processes (``cutout_dev.local_stack.aws_process``), DynamoDB in one and the
    other services in another. The local stack runs the functions, the emulator and moto in one Python process, and
    moto took ~60 % of its interpreter time in the flood (py-spy): one core for everything on a 2-core machine. In a
    child of its own moto was then the bottleneck at one core (DynamoDB ~2/3 of it: update-expression validation and
    response serialisation). DynamoDB talks to no other service here, so it can have a process to itself (boto3
    finds it through ``AWS_ENDPOINT_URL_DYNAMODB``), while S3 → EventBridge → SQS stay together, as their delivery
    happens inside moto. AWS's services are not on the caller's CPU either. Off by default (children cost ~1 s to
    start; most tests start many short stacks), on for the flood and the soak.
    """

    def __init__(self, own_process: bool = False) -> None:
        self.own_process = own_process
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._processes: list[subprocess.Popen[str]] = []
        self.endpoint_url = ""
        # DynamoDB's endpoint: endpoint_url itself unless own_process.
        self.dynamodb_endpoint_url = ""
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> str:
        """Start the server, point this process's boto3 at it, and return the endpoint URL."""
        if self.own_process:
            port = self._start_process()
            self.dynamodb_endpoint_url = f"http://127.0.0.1:{self._start_process()}"
        else:
            server = serve()
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="moto-server", daemon=True
            )
            self._thread.start()
            port = server.server_port
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self.dynamodb_endpoint_url = self.dynamodb_endpoint_url or self.endpoint_url
        # moto's state is per process, not per server: a second stack in the same process (tests) must not
        # see the first one's buckets and queues.
        self.reset()
        self._apply_env(
            {**_AWS_ENV, "AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint_url}
        )
        log.info("moto server on %s", self.endpoint_url)
        return self.endpoint_url

    def _start_process(self) -> int:
        # stdin is the child's lifeline: it exits when the pipe closes (stop(), or this process dying), so a
        # crashed harness never leaves a moto server behind.
        process = subprocess.Popen(
            [sys.executable, "-m", "cutout_dev.local_stack.aws_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._processes.append(process)
        stdout: IO[str] | None = process.stdout
        line = stdout.readline() if stdout is not None else ""
        if not line.strip().isdigit():
            process.kill()
            process.wait(timeout=10)
            self._processes.remove(process)
            raise RuntimeError(f"moto's process did not start (it printed {line!r})")
        return int(line)

    @property
    def processes(self) -> list[subprocess.Popen[str]]:
        """The child processes serving AWS (none when moto is a thread of this process)."""
        return list(self._processes)

    def reset(self) -> None:
        for url in dict.fromkeys((self.endpoint_url, self.dynamodb_endpoint_url)):
            request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
            with urllib.request.urlopen(request, timeout=10):
                pass

    def _save_iam_report(self) -> None:
        """With CUTOUT_IAM_REPORT_DIR set (make test), keep what the local IAM saw for the mutation check; moto in
        processes of its own also hands its refusals to this process's list (iam/enforcer.SEEN_REFUSALS)."""
        directory = os.environ.get("CUTOUT_IAM_REPORT_DIR")
        if not self.endpoint_url or not (directory or self._processes):
            return
        from cutout_dev.local_stack.iam.enforcer import note_refusals
        from cutout_dev.local_stack.iam.principals import report

        for n, url in enumerate(dict.fromkeys((self.endpoint_url, self.dynamodb_endpoint_url))):
            try:
                data = report(url)
            except OSError as exc:
                log.warning("no IAM report from %s: %s", url, exc)
                continue
            if self._processes:
                note_refusals(data["refusals"])
            if not directory:
                continue
            os.makedirs(directory, exist_ok=True)
            path = os.path.join(directory, f"{os.getpid()}-{id(self)}-{n}-{time.time_ns()}.json")
            with open(path, "w", encoding="utf-8") as out:
                json.dump(data, out)

    def stop(self) -> None:
        self._save_iam_report()
        while self._processes:
            process = self._processes.pop()
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
            self._thread = None
        # Nothing listens there any more: a restarted server picks its endpoints afresh.
        self.endpoint_url = self.dynamodb_endpoint_url = ""
        self._restore_env()

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        """A boto3 client pinned to this server (independent of the process environment)."""
        default = self.dynamodb_endpoint_url if service == "dynamodb" else self.endpoint_url
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint_url or default,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
        )

    def _apply_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
