"""What IAM is asked for one HTTP request to the emulated AWS: the actions, resources and condition keys.

Mapped from the services' API references ("Actions, resources, and condition keys for Amazon DynamoDB / Amazon
SQS / Amazon EventBridge / AWS Secrets Manager / AWS Systems Manager / Amazon S3" in the Service Authorization
Reference). Only the calls a function of this template can make need to be mapped; anything else a function
principal sends is refused as *unmapped* (fail closed), so a new call cannot slip past the local IAM unnoticed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from cutout_dev.local_stack.iam.policy import Request

ACCOUNT = "123456789012"
REGION = "us-east-1"

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class Call:
    """One HTTP request as IAM sees it."""

    service: str  # s3, dynamodb, sqs, events, secretsmanager, or another signing name
    operation: str  # the API operation, for the log and the error message
    requests: tuple[Request, ...]  # empty with ``unmapped`` set: the local IAM cannot say what this needs
    unmapped: str = ""


class Unmapped(Exception):
    pass


def access_key_of(environ: Mapping[str, Any]) -> str | None:
    """The access key id that signed the request (SigV4 header, or a presigned URL's X-Amz-Credential)."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    match = _CREDENTIAL.search(authorization)
    if match:
        return match.group(1)
    if authorization.startswith("AWS "):  # S3's legacy SigV2 header: "AWS <key>:<signature>"
        return authorization[4:].split(":", 1)[0]
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    credential = (query.get("X-Amz-Credential") or [""])[0]
    return credential.split("/", 1)[0] or (query.get("AWSAccessKeyId") or [""])[0] or None


def signing_service(environ: Mapping[str, Any]) -> str:
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    query = str(environ.get("QUERY_STRING", ""))
    if auth.startswith("AWS ") or "AWSAccessKeyId=" in query:
        return "s3"  # only S3 still accepts SigV2
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    if match:
        return match.group(1)
    credential = (parse_qs(str(environ.get("QUERY_STRING", ""))).get("X-Amz-Credential") or [""])[0]
    parts = credential.split("/")
    return parts[3] if len(parts) > 3 else ""


# -- DynamoDB ------------------------------------------------------------------------------------------------------
KeySchema = Callable[[str, str | None], str | None]  # (table, index or None) -> partition key attribute name


def _table_arn(table: str) -> str:
    if table.startswith("arn:"):
        return table
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"


def _leading(key: Mapping[str, Any] | None, attribute: str | None) -> tuple[str, ...]:
    if not key or not attribute or attribute not in key:
        return ()
    value = key[attribute]
    return (str(next(iter(value.values()))),) if isinstance(value, Mapping) else (str(value),)


def _query_leading(body: Mapping[str, Any], attribute: str | None) -> tuple[str, ...]:
    """The partition key value a Query names (``#pk = :v`` or ``pk = :v`` in KeyConditionExpression)."""
    expression = str(body.get("KeyConditionExpression", ""))
    names = {v: k for k, v in (body.get("ExpressionAttributeNames") or {}).items()}
    values = body.get("ExpressionAttributeValues") or {}
    for left, right in re.findall(r"([#\w.]+)\s*=\s*(:\w+)", expression):
        if left == attribute or names.get(attribute or "") == left:
            value = values.get(right)
            if isinstance(value, Mapping):
                return (str(next(iter(value.values()))),)
    return ()


def _batch_requests(operation: str, body: Mapping[str, Any], schema: KeySchema) -> list[Request]:
    """One request per table of a BatchGetItem / BatchWriteItem, with the leading keys of its items."""
    requests = []
    for table, spec in (body.get("RequestItems") or {}).items():
        attribute = schema(table, None)
        if operation == "BatchGetItem":
            keys = list(spec.get("Keys") or [])
        else:
            keys = [(w.get("PutRequest") or {}).get("Item") or (w.get("DeleteRequest") or {}).get("Key") for w in spec]
        leading = tuple(sorted({v for k in keys for v in _leading(k, attribute)}))
        requests.append(
            Request(f"dynamodb:{operation}", _table_arn(table), {"dynamodb:leadingkeys": leading} if leading else {})
        )
    return requests


def dynamodb_call(operation: str, body: Mapping[str, Any], schema: KeySchema) -> Call:
    def single(action: str, table: str, key: Mapping[str, Any] | None, index: str | None = None) -> Request:
        resource = _table_arn(table) + (f"/index/{index}" if index else "")
        leading = _leading(key, schema(table, None))
        return Request(f"dynamodb:{action}", resource, {"dynamodb:leadingkeys": leading} if leading else {})

    requests: list[Request] = []
    if operation in ("GetItem", "DeleteItem", "UpdateItem"):
        requests.append(single(operation, body["TableName"], body.get("Key")))
    elif operation == "PutItem":
        requests.append(single(operation, body["TableName"], body.get("Item")))
    elif operation in ("Query", "Scan"):
        table, index = body["TableName"], body.get("IndexName")
        resource = _table_arn(table) + (f"/index/{index}" if index else "")
        leading = _query_leading(body, schema(table, index)) if operation == "Query" else ()
        requests.append(
            Request(f"dynamodb:{operation}", resource, {"dynamodb:leadingkeys": leading} if leading else {})
        )
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        requests.extend(_batch_requests(operation, body, schema))
    elif operation == "TransactWriteItems":
        # Each item needs the permission of its own action ("TransactWriteItems", DynamoDB API reference).
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        for item in body.get("TransactItems") or []:
            ((kind, spec),) = item.items()
            requests.append(single(kinds[kind], spec["TableName"], spec.get("Key") or spec.get("Item")))
    elif operation == "TransactGetItems":
        for item in body.get("TransactItems") or []:
            spec = item["Get"]
            requests.append(single("GetItem", spec["TableName"], spec.get("Key")))
    elif operation in ("DescribeTable", "DescribeTimeToLive", "DescribeContinuousBackups"):
        requests.append(Request(f"dynamodb:{operation}", _table_arn(body["TableName"])))
    else:
        return Call("dynamodb", operation, (), unmapped=f"DynamoDB {operation}")
    return Call("dynamodb", operation, tuple(requests))


# -- SQS -----------------------------------------------------------------------------------------------------------
_SQS_ACTION = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _queue_arn(url_or_name: str) -> str:
    name = urlparse(url_or_name).path.rstrip("/").rsplit("/", 1)[-1] if "/" in url_or_name else url_or_name
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def sqs_call(operation: str, params: Mapping[str, Any]) -> Call:
    target = params.get("QueueUrl") or params.get("QueueName")
    if not target:
        return Call("sqs", operation, (), unmapped=f"SQS {operation} without a queue")
    action = _SQS_ACTION.get(operation, operation)
    return Call("sqs", operation, (Request(f"sqs:{action}", _queue_arn(str(target))),))


# -- EventBridge -----------------------------------------------------------------------------------------------------
def events_call(operation: str, body: Mapping[str, Any]) -> Call:
    if operation != "PutEvents":
        return Call("events", operation, (), unmapped=f"EventBridge {operation}")
    buses = {str(e.get("EventBusName") or "default") for e in body.get("Entries") or []}
    return Call(
        "events",
        operation,
        tuple(
            Request(
                "events:PutEvents",
                bus if bus.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}",
            )
            for bus in sorted(buses)
        ),
    )


# -- Secrets Manager -------------------------------------------------------------------------------------------------
def secrets_call(operation: str, body: Mapping[str, Any], secret_arn: Callable[[str], str]) -> Call:
    secret = body.get("SecretId")
    if not secret:
        return Call("secretsmanager", operation, (), unmapped=f"Secrets Manager {operation}")
    return Call("secretsmanager", operation, (Request(f"secretsmanager:{operation}", secret_arn(str(secret))),))


# -- Systems Manager Parameter Store ---------------------------------------------------------------------------------
def ssm_call(operation: str, body: Mapping[str, Any]) -> Call:
    """GetParameter(s): a parameter's ARN is its name after ``parameter`` (a hierarchical name keeps its slashes:
    ``/stack/cutout/presets`` is ``arn:aws:ssm:<region>:<account>:parameter/stack/cutout/presets``)."""
    names = [body.get("Name")] if operation == "GetParameter" else list(body.get("Names") or [])
    if operation not in ("GetParameter", "GetParameters") or not names or not all(names):
        return Call("ssm", operation, (), unmapped=f"SSM {operation}")
    return Call(
        "ssm",
        operation,
        tuple(
            Request(f"ssm:{operation}", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{str(name).lstrip('/')}")
            for name in names
        ),
    )


# -- S3 ------------------------------------------------------------------------------------------------------------
_OBJECT_GET_SUBRESOURCES = {
    "tagging": "GetObjectTagging",
    "acl": "GetObjectAcl",
    "attributes": "GetObjectAttributes",
    "uploadId": "ListMultipartUploadParts",
    "retention": "GetObjectRetention",
    "legal-hold": "GetObjectLegalHold",
}
_BUCKET_GET_SUBRESOURCES = {
    "versions": "ListBucketVersions",
    "uploads": "ListBucketMultipartUploads",
    "location": "GetBucketLocation",
    "notification": "GetBucketNotification",
    "encryption": "GetEncryptionConfiguration",
    "versioning": "GetBucketVersioning",
    "policy": "GetBucketPolicy",
    "tagging": "GetBucketTagging",
    "acl": "GetBucketAcl",
}


def _s3_object_get(method: str, query: Mapping[str, list[str]], object_arn: str, version: bool) -> Call:
    sub = next((s for s in _OBJECT_GET_SUBRESOURCES if s in query), None)
    if sub is not None and method == "GET":
        action = _OBJECT_GET_SUBRESOURCES[sub] + ("Version" if version and sub == "tagging" else "")
    else:
        action = "GetObjectVersion" if version else "GetObject"
    operation = "HeadObject" if method == "HEAD" else action
    return Call("s3", operation, (Request(f"s3:{action}", object_arn),))


def _s3_object_put(query: Mapping[str, list[str]], headers: Mapping[str, str], object_arn: str) -> Call:
    if "tagging" in query:
        return Call("s3", "PutObjectTagging", (Request("s3:PutObjectTagging", object_arn),))
    if "acl" in query:
        return Call("s3", "PutObjectAcl", (Request("s3:PutObjectAcl", object_arn),))
    requests = [Request("s3:PutObject", object_arn)]
    if headers.get("x-amz-tagging"):
        requests.append(Request("s3:PutObjectTagging", object_arn))
    source = headers.get("x-amz-copy-source")
    if source:
        src_path, _, src_query = unquote(source).partition("?")
        src_bucket, _, src_key = src_path.lstrip("/").partition("/")
        src_action = "GetObjectVersion" if "versionId=" in src_query else "GetObject"
        requests.append(Request(f"s3:{src_action}", f"arn:aws:s3:::{src_bucket}/{src_key}"))
    operation = "UploadPart" if "uploadId" in query else ("CopyObject" if source else "PutObject")
    return Call("s3", operation, tuple(requests))


def _s3_object_post(query: Mapping[str, list[str]], object_arn: str) -> Call:
    if "uploads" in query or "uploadId" in query:
        operation = "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
        return Call("s3", operation, (Request("s3:PutObject", object_arn),))
    return Call("s3", "POST", (), unmapped=f"S3 POST object {sorted(query)}")


def _s3_object_delete(query: Mapping[str, list[str]], object_arn: str, version: bool) -> Call:
    if "uploadId" in query:
        return Call("s3", "AbortMultipartUpload", (Request("s3:AbortMultipartUpload", object_arn),))
    if "tagging" in query:
        return Call("s3", "DeleteObjectTagging", (Request("s3:DeleteObjectTagging", object_arn),))
    action = "DeleteObjectVersion" if version else "DeleteObject"
    return Call("s3", action, (Request(f"s3:{action}", object_arn),))


def _s3_object_call(
    method: str, query: Mapping[str, list[str]], headers: Mapping[str, str], object_arn: str, version: bool
) -> Call:
    if method in ("GET", "HEAD"):
        return _s3_object_get(method, query, object_arn, version)
    if method == "PUT":
        return _s3_object_put(query, headers, object_arn)
    if method == "POST":
        return _s3_object_post(query, object_arn)
    if method == "DELETE":
        return _s3_object_delete(query, object_arn, version)
    return Call("s3", method, (), unmapped=f"S3 {method} object")


_LIST_OBJECTS_PARAMETERS = {
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "marker",
    "encoding-type",
    "fetch-owner",
}


def _s3_bucket_call(method: str, query: Mapping[str, list[str]], bucket_arn: str) -> Call:
    if method not in ("GET", "HEAD"):
        return Call("s3", f"{method} bucket", (), unmapped=f"S3 {method} bucket {sorted(query)}")
    sub = next((s for s in _BUCKET_GET_SUBRESOURCES if s in query), None)
    if sub is not None and method == "GET":
        action = _BUCKET_GET_SUBRESOURCES[sub]
        return Call("s3", action, (Request(f"s3:{action}", bucket_arn),))
    if set(query) - _LIST_OBJECTS_PARAMETERS:
        return Call("s3", "GET bucket", (), unmapped=f"S3 GET bucket {sorted(query)}")
    context: dict[str, tuple[str, ...]] = {}
    if "prefix" in query:
        context["s3:prefix"] = (query["prefix"][0],)
    operation = "HeadBucket" if method == "HEAD" else "ListObjects"
    return Call("s3", operation, (Request("s3:ListBucket", bucket_arn, context),))


def s3_call(method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> Call:
    """Path-style S3 requests (the only style boto3 uses against a loopback endpoint)."""
    bucket, _, raw_key = path.lstrip("/").partition("/")
    key = unquote(raw_key)
    if not bucket:
        if method == "GET":
            return Call("s3", "ListBuckets", (Request("s3:ListAllMyBuckets", "*"),))
        return Call("s3", method, (), unmapped=f"S3 {method} /")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if key:
        return _s3_object_call(method, query, headers, f"{bucket_arn}/{key}", "versionId" in query)
    return _s3_bucket_call(method, query, bucket_arn)


# -- dispatch --------------------------------------------------------------------------------------------------------
def _json_call(
    service: str, operation: str, body: bytes, schema: KeySchema, secret_arn: Callable[[str], str]
) -> Call | None:
    """A JSON-protocol request (X-Amz-Target names the operation); None for a service not described so."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        payload = {}
    handlers: dict[str, Callable[[], Call]] = {
        "dynamodb": lambda: dynamodb_call(operation, payload, schema),
        "sqs": lambda: sqs_call(operation, payload),
        "events": lambda: events_call(operation, payload),
        "secretsmanager": lambda: secrets_call(operation, payload, secret_arn),
        "ssm": lambda: ssm_call(operation, payload),
    }
    handler = handlers.get(service)
    return handler() if handler is not None else None


def describe(environ: Mapping[str, Any], body: bytes, *, schema: KeySchema, secret_arn: Callable[[str], str]) -> Call:
    """The IAM view of one request, whatever the service's protocol."""
    service = signing_service(environ)
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    operation = target.rpartition(".")[2]
    if service == "s3":
        query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        return s3_call(str(environ.get("REQUEST_METHOD", "GET")), str(environ.get("PATH_INFO", "/")), query, headers)
    if target:
        described = _json_call(service, operation, body, schema, secret_arn)
        if described is not None:
            return described
    if service == "sqs":  # the query protocol: Action=...&QueueUrl=... in the form body
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        return sqs_call(form.get("Action", ""), form)
    return Call(
        service or "unknown", operation or str(environ.get("REQUEST_METHOD")), (), unmapped=f"{service} {operation}"
    )
