"""Child process of part 2: the submit handler and the floor, alternating batch by batch, warm.

Runs in its own process so the handler's CPU is not shared (GIL) with moto server and the emulator, which live in
the parent. Both variants run in this one process on the same batches' shapes; only their clients differ:
the handler's come from boto3's default session (as ``cutout.aws.aws_clients`` creates them), the floor's from a
separate session, so botocore's ``before-call``/``before-send`` events attribute every AWS call to its variant.

    python -m cutout_dev.bench.per_record_worker SPEC.json OUT.json
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from cutout_dev import aws_events
from cutout_dev.local_stack.lambda_runtime import LambdaContext

ROOT = Path(__file__).resolve().parents[3]
CREATE_PATH = "/v1/image-background-remover"


class FakeContext(LambdaContext):
    """The local stack's Lambda context, named for the benchmark's submit invocations. It allows the longest timeout
    Lambda has: this part measures the cost of a record, not the time budget, and with the template's 30 s a loaded
    machine made the submit defer the end of a batch (counted as failures, and not the same work as the floor's)."""

    def __init__(self) -> None:
        super().__init__("cutout-submit-bench", memory_mb=256, timeout_seconds=900)


def sqs_event(bucket: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """What the ingest queue's event source delivers: EventBridge "Object Created" events, keys encoded as AWS does."""
    return aws_events.sqs_event(
        [aws_events.eventbridge_object_created(bucket, o["key"], o["etag"], o["size"]) for o in objects]
    )


class Floor:
    """The least any implementation must do per image, on the wire:

    1. S3 ranged GET (64 bytes): the object exists and is an image — never pay 5 credits for a PDF.jpg;
       the same call gives the ETag for the job id. (A HEAD would do for existence but cannot see the bytes.)
    2. presign the GET for Magic Hour — local computation, no call;
    3. DynamoDB conditional put: the claim. Magic Hour has no idempotency key, so this is the only guard
       against paying twice for a redelivered event;
    4. Magic Hour POST create;
    5. DynamoDB update: record the project id (the poller and the sweeper find the job by it);
    6. SQS send: the delayed status check that completes the job if the webhook never comes.
    Secrets are read once per execution environment (cached), not per image.
    """

    def __init__(self, session: Any, env: dict[str, str]) -> None:
        import requests
        from botocore.config import Config

        cfg = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 4, "mode": "standard"})
        self.s3 = session.client("s3", config=cfg.merge(Config(signature_version="s3v4")))
        self.ddb = session.client("dynamodb", config=cfg)
        self.sqs = session.client("sqs", config=cfg)
        key = session.client("secretsmanager").get_secret_value(SecretId=env["MAGIC_HOUR_API_KEY_SECRET"])
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key['SecretString']}"
        self.base_url = env["MAGIC_HOUR_BASE_URL"]
        self.table = env["JOBS_TABLE"]
        self.poll_queue = env["POLL_QUEUE_URL"]

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            try:
                self.one(json.loads(record["body"]))
            except Exception as exc:  # a partial batch response, like the handler's
                print(f"floor record failed: {exc!r}", file=sys.stderr)
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def one(self, doc: dict[str, Any]) -> None:
        detail = doc["detail"]
        bucket, key = detail["bucket"]["name"], unquote_plus(detail["object"]["key"])
        got = self.s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-63")
        head = got["Body"].read()
        if not (head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) or head[8:12] == b"WEBP"):
            raise ValueError("not an image")
        etag = str(got["ETag"]).strip('"')
        job_id = hashlib.sha256(f"{bucket}\0{key}\0{etag}".encode()).hexdigest()[:32]
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.ddb.put_item(
            TableName=self.table,
            Item={
                "job_id": {"S": job_id},
                "status": {"S": "submitting"},
                "source_bucket": {"S": bucket},
                "source_key": {"S": key},
                "created_at": {"S": now},
            },
            ConditionExpression="attribute_not_exists(job_id)",
        )
        resp = self.http.post(
            self.base_url + CREATE_PATH,
            json={"name": f"floor:{job_id}", "assets": {"image_file_path": url}},
            timeout=(3.05, 20),
        )
        resp.raise_for_status()
        project_id = resp.json()["id"]
        self.ddb.update_item(
            TableName=self.table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="SET #s = :q, project_id = :p",
            ConditionExpression="#s = :submitting",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":q": {"S": "queued"},
                ":p": {"S": project_id},
                ":submitting": {"S": "submitting"},
            },
        )
        self.sqs.send_message(
            QueueUrl=self.poll_queue,
            MessageBody=json.dumps({"job_id": job_id, "project_id": project_id, "attempt": 1, "first_check_at": now}),
            DelaySeconds=0,
        )


def main(spec_path: str, out_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    env: dict[str, str] = spec["env"]
    import boto3
    import requests.adapters

    boto3.setup_default_session()
    floor_session = boto3.session.Session()
    counting = {"on": False}
    current = {"variant": ""}
    api: dict[str, Counter[str]] = {"handler": Counter(), "floor": Counter()}
    sends: dict[str, Counter[str]] = {"handler": Counter(), "floor": Counter()}
    mh: dict[str, Counter[str]] = {"handler": Counter(), "floor": Counter()}

    def counter(variant: str, table: dict[str, Counter[str]]) -> Any:
        def on_event(event_name: str, **_: Any) -> None:
            if counting["on"]:
                table[variant][event_name.split(".", 1)[1]] += 1  # "before-call.s3.GetObject" -> "s3.GetObject"

        return on_event

    # Registered before any client exists: clients copy their session's handlers when they are created.
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call", counter("handler", api))
    boto3.DEFAULT_SESSION.events.register("before-send", counter("handler", sends))
    floor_session.events.register("before-call", counter("floor", api))
    floor_session.events.register("before-send", counter("floor", sends))

    # Client-side view of Magic Hour requests (the emulator's own log, read by the parent, is the authority).
    original_send = requests.adapters.HTTPAdapter.send

    def counted_send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if counting["on"] and str(request.url).startswith(env["MAGIC_HOUR_BASE_URL"]):
            mh[current["variant"]][f"{request.method} {request.path_url.split('?')[0]}"] += 1
        return original_send(self, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = counted_send  # type: ignore[method-assign]

    sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "functions" / "submit")]
    import app  # type: ignore[import-not-found]  # the submit function, as Lambda loads it

    floor = Floor(floor_session, env)
    runners = {
        "handler": lambda ev: app.lambda_handler(ev, FakeContext()),
        "floor": floor.handle,
    }
    bucket = spec["bucket"]
    timings: dict[str, dict[str, list[float]]] = {v: {"wall_ms": [], "cpu_ms": []} for v in runners}
    failures = Counter[str]()
    for phase in ("warmup", "measure"):
        counting["on"] = phase == "measure"
        for variant, objects in spec[phase]:
            event = sqs_event(bucket, objects)
            current["variant"] = variant
            w0, c0 = time.perf_counter(), time.process_time()
            response = runners[variant](event)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            failures[variant] += len(response.get("batchItemFailures", []))
            if phase == "measure":
                # Per record: the batch's time over its records (what the batch costs each image).
                timings[variant]["wall_ms"].append(wall * 1000 / len(objects))
                timings[variant]["cpu_ms"].append(cpu * 1000 / len(objects))
    Path(out_path).write_text(
        json.dumps(
            {
                "timings": timings,
                "api_calls": {k: dict(v) for k, v in api.items()},
                "http_sends": {k: dict(v) for k, v in sends.items()},
                "magic_hour_client_side": {k: dict(v) for k, v in mh.items()},
                "failures": dict(failures),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
