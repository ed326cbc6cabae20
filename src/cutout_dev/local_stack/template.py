"""template.yaml → plain CloudFormation → what the local stack needs to run it.

The SAM template is the single source of truth: the same translation CloudFormation's ``AWS::Serverless``
transform performs (aws-sam-translator, offline) gives the queues, table, bucket and rules to create, and the
functions' environment, event-source mappings and schedules, exactly as Lambda would be configured.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutout_dev.local_stack.cfn_yaml import load_template
from cutout_dev.local_stack.intrinsics import IntrinsicResolver, UnresolvableError

FUNCTION = "AWS::Lambda::Function"
ESM = "AWS::Lambda::EventSourceMapping"
EVENTS_RULE = "AWS::Events::Rule"
FUNCTION_URL = "AWS::Lambda::Url"
SECRET = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type, not a password


@dataclass(frozen=True)
class SqsEventSource:
    """One ``AWS::Lambda::EventSourceMapping`` from an SQS queue, as Lambda's poller would read it."""

    function_id: str
    mapping_id: str
    queue_id: str
    batch_size: int
    batching_window_seconds: int
    maximum_concurrency: int | None
    report_batch_item_failures: bool
    enabled: bool


@dataclass(frozen=True)
class ScheduleEvent:
    """An EventBridge schedule rule whose target is a function."""

    function_id: str
    rule_id: str
    expression: str
    enabled: bool
    input: str | None


@dataclass
class FunctionSpec:
    """One Lambda function of the template (values still unresolved intrinsics where the template has them)."""

    logical_id: str
    code_dir: Path
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, Any]
    function_name: Any
    url_id: str | None = None
    sqs_sources: list[SqsEventSource] = field(default_factory=list)
    schedules: list[ScheduleEvent] = field(default_factory=list)


@dataclass
class TranslatedTemplate:
    """The translated CloudFormation template plus the function model extracted from it."""

    cfn: dict[str, Any]
    functions: dict[str, FunctionSpec]

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.cfn.get("Resources", {})
        return resources

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == resource_type}


class _AnyManagedPolicy(dict[str, str]):
    """Managed-policy map stub: every AWS managed policy name maps to its well-known ARN.

    The real loader calls IAM ``ListPolicies``; the ARNs of AWS managed policies are predictable. What they grant
    is spelled out where the local IAM enforces the roles (local_stack/iam/roles.py, ``MANAGED_POLICIES``), which
    refuses a managed policy it does not model.
    """

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __getitem__(self, key: str) -> str:
        return f"arn:aws:iam::aws:policy/{key}"

    def get(self, key: str, default: Any = None) -> str:
        return self[key]


def _code_dirs(sam: dict[str, Any], root: Path) -> dict[str, Path]:
    """Each serverless function's CodeUri (a local path in the source template), with Globals applied.

    The translator only accepts S3 locations (``sam build``/``package`` normally rewrite them), so the paths are
    recorded here and replaced by placeholders before translation.
    """
    global_fn = (sam.get("Globals") or {}).get("Function") or {}
    dirs: dict[str, Path] = {}
    for logical_id, res in (sam.get("Resources") or {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.setdefault("Properties", {})
        code_uri = props.get("CodeUri", global_fn.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise ValueError(f"{logical_id}: local CodeUri expected, got {code_uri!r}")
        dirs[logical_id] = (root / code_uri).resolve()
        props["CodeUri"] = {"Bucket": "cutout-local-code", "Key": f"{logical_id}.zip"}
    if "CodeUri" in global_fn:
        global_fn["CodeUri"] = {"Bucket": "cutout-local-code", "Key": "globals.zip"}
    for res in (sam.get("Resources") or {}).values():
        if res.get("Type") == "AWS::Serverless::LayerVersion":
            res.setdefault("Properties", {})["ContentUri"] = {"Bucket": "cutout-local-code", "Key": "layer.zip"}
    return dirs


def translate(template_path: Path, parameters: Mapping[str, Any]) -> TranslatedTemplate:
    """Translate the SAM template offline and extract the function model."""
    # samtranslator reads the region for pseudo parameters from boto3's default session; no calls are made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(load_template(template_path))
    code_dirs = _code_dirs(sam, template_path.parent)
    known = set((sam.get("Parameters") or {}).keys())
    params = {k: v for k, v in parameters.items() if k in known}
    policy_map = _AnyManagedPolicy()
    translator = Translator(policy_map, Parser())
    cfn: dict[str, Any] = translator.translate(
        sam, parameter_values=dict(params), get_managed_policy_map=lambda: policy_map
    )
    # The translator records timing metrics for its (offline, dummy) publisher and warns if they are never
    # published; publishing to the dummy publisher discards them.
    translator.metrics.publish()
    return TranslatedTemplate(cfn=cfn, functions=_extract_functions(cfn, code_dirs, params))


def _logical_of(value: Any) -> str | None:
    """The logical id behind ``Ref X`` or ``GetAtt X.Arn`` (how the translator links functions and queues)."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            arg = value["Fn::GetAtt"]
            return arg.partition(".")[0] if isinstance(arg, str) else str(arg[0])
    return None


def _number(params: IntrinsicResolver, value: Any, default: int) -> int:
    return default if value is None else int(params.resolve(value))


def _attach_event(
    logical_id: str,
    res: dict[str, Any],
    resources: dict[str, Any],
    functions: dict[str, FunctionSpec],
    params: IntrinsicResolver,
) -> None:
    """An SQS event source mapping, a schedule or a Function URL, added to the function it targets."""
    props = res.get("Properties", {})
    kind = res.get("Type")
    if kind == ESM:
        fn = _logical_of(props.get("FunctionName"))
        queue = _logical_of(props.get("EventSourceArn"))
        if fn not in functions or queue is None or resources.get(queue, {}).get("Type") != "AWS::SQS::Queue":
            return  # streams or queues outside the template: nothing local to poll
        scaling = params.resolve(props.get("ScalingConfig") or {})
        functions[fn].sqs_sources.append(
            SqsEventSource(
                function_id=fn,
                mapping_id=logical_id,
                queue_id=queue,
                batch_size=_number(params, props.get("BatchSize"), 10),
                batching_window_seconds=_number(params, props.get("MaximumBatchingWindowInSeconds"), 0),
                maximum_concurrency=(int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None),
                report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                enabled=params.resolve(props.get("Enabled", True)) in (True, "true", "True"),
            )
        )
    elif kind == EVENTS_RULE and "ScheduleExpression" in props:
        for target in props.get("Targets") or []:
            fn = _logical_of(target.get("Arn"))
            if fn in functions:
                functions[fn].schedules.append(
                    ScheduleEvent(
                        function_id=fn,
                        rule_id=logical_id,
                        expression=str(props["ScheduleExpression"]),
                        enabled=props.get("State", "ENABLED") == "ENABLED",
                        input=target.get("Input"),
                    )
                )
    elif kind == FUNCTION_URL:
        fn = _logical_of(props.get("TargetFunctionArn"))
        if fn in functions:
            functions[fn].url_id = logical_id


def _extract_functions(
    cfn: dict[str, Any], code_dirs: dict[str, Path], parameters: Mapping[str, Any]
) -> dict[str, FunctionSpec]:
    resources: dict[str, Any] = cfn.get("Resources", {})

    def no_resource(*args: str) -> Any:
        raise UnresolvableError(f"{args} is a resource; expected a parameter")

    # Scalars such as ScalingConfig.MaximumConcurrency are often parameter Refs the translator passes through.
    params = IntrinsicResolver(
        cfn,
        parameters,
        region=os.environ["AWS_DEFAULT_REGION"],
        stack_name="local",
        ref=no_resource,
        get_att=no_resource,
    )

    def number(value: Any, default: int) -> int:
        return default if value is None else int(params.resolve(value))

    functions: dict[str, FunctionSpec] = {}
    for logical_id, res in resources.items():
        if res.get("Type") != FUNCTION:
            continue
        props = res.get("Properties", {})
        if logical_id not in code_dirs:
            raise ValueError(f"{logical_id}: only AWS::Serverless::Function functions run locally")
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=code_dirs[logical_id],
            handler=str(props.get("Handler", "app.lambda_handler")),
            timeout_seconds=number(props.get("Timeout"), 3),
            memory_mb=number(props.get("MemorySize"), 128),
            environment=dict((props.get("Environment") or {}).get("Variables") or {}),
            function_name=props.get("FunctionName"),
        )
    for logical_id, res in resources.items():
        _attach_event(logical_id, res, resources, functions, params)
    return functions
