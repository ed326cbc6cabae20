"""Part 2: submit cost per record — the submit handler against a floor script, through moto server and the emulator.

Both run warm in one child process (``per_record_worker``), batches of 10 alternating ABBA, each on its own fresh
uploads, against the same moto server and emulator (in this process, at zero added latency). The emulator's
queue time is set beyond the run so no render (a fetch from moto + Pillow) competes for the CPU while we measure.

Figures: per-record wall time (batch time / records; includes moto's and the emulator's answer times, identical
for both) and per-record CPU time in the worker (the Lambda-billable work itself, without the servers), each a
median with spread and a ratio of medians; AWS calls per image counted with botocore events; Magic Hour requests
per image from the emulator's log.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from cutout_dev.bench.stats import ratio, summary

ROOT = Path(__file__).resolve().parents[3]
PER_RECORD_TARGET = 1.25
BATCH = 10
BUCKET = "cutout-bench-images"
API_KEY = "bench-emulator-key"

# The minimum per image, argued in per_record_worker.Floor: S3 ranged GET, DynamoDB conditional insert (the claim;
# the floor writes it with PutItem, the store with an insert-if-absent UpdateItem: one write either way), Magic Hour
# create, DynamoDB update, SQS send. Presigning is local; the secret is cached per execution environment.
MINIMUM_AWS_CALLS = {"s3.GetObject": 1, "dynamodb.UpdateItem": 2, "sqs.SendMessage": 1}
MINIMUM_MAGIC_HOUR_CALLS = {"create": 1}


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _table_definition() -> dict[str, Any]:
    """The jobs table's create_table arguments, read from template.yaml (one source of truth)."""
    from cutout_dev.local_stack.cfn_yaml import load_template

    props = load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"]
    args: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = [
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in props["GlobalSecondaryIndexes"]
        ]
    return args


def _per_image(counts: dict[str, int], images: int) -> dict[str, float]:
    return {k: round(v / images, 3) for k, v in sorted(counts.items())} if images else {}


def _worker_env(base_url: str, poll_queue: str) -> dict[str, str]:
    """The submit function's environment for the worker, against this run's moto and emulator."""
    return {
        "JOBS_TABLE": "cutout-jobs",
        "SOURCE_BUCKET": BUCKET,
        "INPUT_PREFIX": "incoming/",
        "OUTPUT_PREFIX": "cutouts/",
        "MAGIC_HOUR_BASE_URL": base_url,
        "MAGIC_HOUR_API_KEY_SECRET": "cutout/magic-hour-api-key",
        "MAGIC_HOUR_WEBHOOK_SECRET": "cutout/magic-hour-webhook-secret",
        "POLL_QUEUE_URL": poll_queue,
        "COMPLETION_QUEUE_URL": poll_queue,
        "POLL_FIRST_DELAY_SECONDS": "0",
        "POWERTOOLS_SERVICE_NAME": "cutout",
        "POWERTOOLS_METRICS_NAMESPACE": "Cutout",
        "LOG_LEVEL": "INFO",
    }


def _run_worker(env: dict[str, str], endpoint: str, warmup: list[Any], measure: list[Any]) -> dict[str, Any]:
    """The timed part, run by `per_record_worker` in a child process: its timings and counts."""
    with tempfile.TemporaryDirectory(prefix="cutout-bench-") as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "out.json")
        spec_path.write_text(json.dumps({"env": env, "bucket": BUCKET, "warmup": warmup, "measure": measure}))
        child_env = {**os.environ, **env, "AWS_ENDPOINT_URL": endpoint}
        proc = subprocess.run(
            [sys.executable, "-m", "cutout_dev.bench.per_record_worker", str(spec_path), str(out_path)],
            env=child_env,
            stdout=subprocess.DEVNULL,  # the handler's JSON logs and EMF metrics: real work, not our output
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 or not out_path.exists():
            raise RuntimeError(f"per-record worker failed ({proc.returncode}): {proc.stderr[-3000:]}")
        worker: dict[str, Any] = json.loads(out_path.read_text())
    return worker


def run(records: int, log: Any = print) -> dict[str, Any]:
    from cutout_dev.emulator import EmulatorConfig, EmulatorServer
    from cutout_dev.local_stack.aws import MotoServer

    batches = max(1, records // BATCH)
    moto = MotoServer()
    endpoint = moto.start()
    emulator = EmulatorServer(EmulatorConfig(api_key=API_KEY, queue_seconds=3600.0, render_seconds=0.0))
    base_url = emulator.start()
    try:
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        moto.client("dynamodb").create_table(TableName="cutout-jobs", **_table_definition())
        poll_queue = moto.client("sqs").create_queue(QueueName="cutout-poll")["QueueUrl"]
        moto.client("secretsmanager").create_secret(Name="cutout/magic-hour-api-key", SecretString=API_KEY)
        body = _png()

        def upload(variant: str, n: int) -> list[dict[str, Any]]:
            out = []
            for i in range(n):
                # A space and a plus in every key: the decode-once path is part of the work.
                key = f"incoming/bench/{variant}/{uuid_hex()} photo+{i}.png"
                etag = str(s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="image/png")["ETag"])
                out.append({"key": key, "etag": etag.strip('"'), "size": len(body)})
            return out

        warmup = [[v, upload(v, BATCH)] for v in ("handler", "floor")]
        measure: list[list[Any]] = []
        for i in range(batches):
            order = ("handler", "floor") if i % 2 == 0 else ("floor", "handler")  # ABBA against drift
            measure.extend([v, upload(v, BATCH)] for v in order)
        env = _worker_env(base_url, poll_queue)
        before = Counter(emulator.request_counts())
        worker = _run_worker(env, endpoint, warmup, measure)
        emulator_counts = Counter(emulator.request_counts())
        emulator_counts.subtract(before)
        creates = emulator.state.creates
    finally:
        emulator.stop()
        moto.stop()

    per_variant_images = batches * BATCH  # measured records per variant
    total_images = per_variant_images + BATCH  # + warm-up, which the emulator's log cannot tell apart
    created = {
        "handler": sum(1 for c in creates if (c.name or "").startswith("cutout:")),
        "floor": sum(1 for c in creates if (c.name or "").startswith("floor:")),
    }
    non_create = {k: v for k, v in emulator_counts.items() if v and k != "create"}
    t = worker["timings"]
    result: dict[str, Any] = {
        "compared": "submit handler (SQS batch of 10 EventBridge Object Created events) vs floor script, warm",
        "records_per_variant": per_variant_images,
        "batch_size": BATCH,
        "target": PER_RECORD_TARGET,
        "wall_ms_per_record": summary(t["handler"]["wall_ms"]),
        "floor_wall_ms_per_record": summary(t["floor"]["wall_ms"]),
        "ratio": ratio(t["handler"]["wall_ms"], t["floor"]["wall_ms"], target=PER_RECORD_TARGET),
        "cpu_ms_per_record": summary(t["handler"]["cpu_ms"]),
        "floor_cpu_ms_per_record": summary(t["floor"]["cpu_ms"]),
        "cpu_ratio": ratio(t["handler"]["cpu_ms"], t["floor"]["cpu_ms"]),
        "aws_calls_per_image": _per_image(worker["api_calls"]["handler"], per_variant_images),
        "floor_aws_calls_per_image": _per_image(worker["api_calls"]["floor"], per_variant_images),
        "aws_http_requests_per_image": _per_image(worker["http_sends"]["handler"], per_variant_images),
        "minimum_aws_calls_per_image": MINIMUM_AWS_CALLS,
        "magic_hour_calls_per_image": {
            "create": round(created["handler"] / total_images, 3),
            # The floor makes only creates; any other request in the emulator's log is the handler's.
            **{k: round(v / total_images, 3) for k, v in non_create.items()},
        },
        "floor_magic_hour_calls_per_image": {"create": round(created["floor"] / total_images, 3)},
        "minimum_magic_hour_calls_per_image": MINIMUM_MAGIC_HOUR_CALLS,
        "magic_hour_client_side_per_image": _per_image(worker["magic_hour_client_side"]["handler"], per_variant_images),
        "emulator_requests_total": {k: v for k, v in emulator_counts.items() if v},
        "failures": worker["failures"],
        "secrets_manager": (
            "1 GetSecretValue per execution environment per 300 s (cutout.aws.secrets cache), not per image"
        ),
    }
    log(
        f"  per record: {result['wall_ms_per_record']['median']:.2f} ms vs floor "
        f"{result['floor_wall_ms_per_record']['median']:.2f} ms -> {result['ratio']['value']:.2f}x "
        f"(cpu {result['cpu_ratio']['value']:.2f}x)"
    )
    return result


def uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex[:12]
