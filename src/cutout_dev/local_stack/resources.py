"""Create the template's stateful resources in moto, through CloudFormation, and fill moto's known gaps.

What moto runs: buckets, queues (with their redrive policies), the table, EventBridge rules with non-Lambda
targets, topics. What it does not: Lambda functions/layers/permissions/mappings/URLs (run in-process by the
local stack instead), IAM (nothing enforces it locally), Secrets Manager (moto's CloudFormation has no model for
it; created through the API here). References to dropped resources are replaced by the values the local stack
gives them (e.g. a Function URL → the local webhook endpoint) before the template reaches moto.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cutout_dev.local_stack import deploy_rules
from cutout_dev.local_stack.aws import REGION, MotoServer
from cutout_dev.local_stack.intrinsics import (
    ACCOUNT_ID,
    IntrinsicResolver,
    UnresolvableError,
    replace_references,
)
from cutout_dev.local_stack.template import FUNCTION, FUNCTION_URL, SECRET, TranslatedTemplate

log = logging.getLogger(__name__)

# Types handed to moto's CloudFormation. Everything else is either run locally (Lambda), irrelevant without
# IAM enforcement, or unsupported by moto (a Ref to an unsupported type would break the whole stack).
MOTO_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::Events::Rule",
        "AWS::Events::EventBus",
        "AWS::SNS::Topic",
        "AWS::SSM::Parameter",
        "AWS::KMS::Key",
    }
)

# Dropped (not created by moto's CloudFormation) types whose Ref is a name the template sets: the local value
# is that name, so outputs such as log group names read as they will on AWS.
NAME_PROPERTIES = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
}

# CloudWatch alarm properties moto's PutMetricAlarm takes (its CloudFormation has no alarm model, so the local
# stack creates them through the API: `cutout status` finds them by name as on AWS, in state INSUFFICIENT_DATA).
ALARM_PROPERTIES = (
    "AlarmName",
    "AlarmDescription",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "AlarmActions",
    "OKActions",
)


@dataclass
class DeployedResources:
    """Physical names of everything the local stack created, and a resolver for the template's intrinsics."""

    stack_name: str
    physical_ids: dict[str, str]
    types: dict[str, str]
    outputs: dict[str, str]
    resolver: IntrinsicResolver
    dropped: dict[str, str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> str:
        return str(self.resolver.resolve({"Ref": logical_id}))

    def get_att(self, logical_id: str, attribute: str) -> str:
        return str(self.resolver.resolve({"Fn::GetAtt": [logical_id, attribute]}))

    def of_type(self, resource_type: str) -> dict[str, str]:
        """Logical id → physical id of every created resource of ``resource_type``."""
        return {k: v for k, v in self.physical_ids.items() if self.types.get(k) == resource_type}


class _Lookups:
    """Ref/GetAtt answers for the created resources and the locally simulated ones."""

    def __init__(
        self,
        translated: TranslatedTemplate,
        stack_name: str,
        function_url: str,
    ) -> None:
        self.translated = translated
        self.stack_name = stack_name
        self.function_url = function_url
        self.physical_ids: dict[str, str] = {}
        self.resolver: IntrinsicResolver | None = None

    def _type(self, logical_id: str) -> str:
        res = self.translated.resources.get(logical_id)
        if res is None:
            raise UnresolvableError(f"unknown resource {logical_id}")
        return str(res.get("Type"))

    def _function_name(self, logical_id: str) -> str:
        spec = self.translated.functions.get(logical_id)
        if spec is not None and spec.function_name is not None and self.resolver is not None:
            return str(self.resolver.resolve(spec.function_name))
        return f"{self.stack_name}-{logical_id}"

    def ref(self, logical_id: str) -> Any:
        kind = self._type(logical_id)
        if logical_id in self.physical_ids:
            return self.physical_ids[logical_id]
        if kind == FUNCTION:
            return self._function_name(logical_id)
        named_by = NAME_PROPERTIES.get(kind)
        name = (self.translated.resources[logical_id].get("Properties") or {}).get(named_by or "")
        if name is not None and self.resolver is not None:
            return str(self.resolver.resolve(name))  # a resource the template names: its Ref is that name
        raise UnresolvableError(f"{logical_id} ({kind}) has no local physical id")

    def _attributes(self, kind: str, logical_id: str) -> dict[str, Any]:
        """The GetAtt attributes modelled locally for a resource of type `kind`."""
        arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT_ID}:"
        ref = self.ref
        by_kind: dict[str, Callable[[], dict[str, Any]]] = {
            "AWS::SQS::Queue": lambda: {
                "Arn": arn.format("sqs") + ref(logical_id).rsplit("/", 1)[-1],
                "QueueName": ref(logical_id).rsplit("/", 1)[-1],
                "QueueUrl": ref(logical_id),
            },
            "AWS::DynamoDB::Table": lambda: {"Arn": arn.format("dynamodb") + f"table/{ref(logical_id)}"},
            "AWS::S3::Bucket": lambda: {
                "Arn": f"arn:aws:s3:::{ref(logical_id)}",
                "DomainName": f"{ref(logical_id)}.s3.amazonaws.com",
                "RegionalDomainName": f"{ref(logical_id)}.s3.{REGION}.amazonaws.com",
            },
            "AWS::Events::Rule": lambda: {"Arn": arn.format("events") + f"rule/{ref(logical_id)}"},
            "AWS::SNS::Topic": lambda: {
                "TopicArn": ref(logical_id),
                "TopicName": ref(logical_id).rsplit(":", 1)[-1],
            },
            SECRET: lambda: {"Id": ref(logical_id)},
            FUNCTION: lambda: {"Arn": arn.format("lambda") + f"function:{self._function_name(logical_id)}"},
            FUNCTION_URL: lambda: {"FunctionUrl": self.function_url, "FunctionArn": ""},
            "AWS::CloudWatch::Alarm": lambda: {"Arn": arn.format("cloudwatch") + f"alarm:{ref(logical_id)}"},
            "AWS::Logs::LogGroup": lambda: {"Arn": arn.format("logs") + f"log-group:{ref(logical_id)}:*"},
            "AWS::IAM::Role": lambda: {"Arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{self.stack_name}-{logical_id}"},
        }
        make = by_kind.get(kind)
        return make() if make is not None else {}

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self._type(logical_id)
        values = self._attributes(kind, logical_id)
        if attribute not in values:
            raise UnresolvableError(f"GetAtt {logical_id}.{attribute} ({kind}) is not modelled locally")
        return values[attribute]


def _moto_template(translated: TranslatedTemplate, lookups: _Lookups) -> tuple[dict[str, Any], dict[str, str]]:
    """The subset of the translated template moto should create, with references to the rest made literal."""
    kept: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    for logical_id, res in translated.resources.items():
        kind = str(res.get("Type"))
        if kind not in MOTO_TYPES:
            dropped[logical_id] = kind
            continue
        if kind == "AWS::Events::Rule":
            targets = [
                t for t in (res.get("Properties", {}).get("Targets") or []) if not _targets_function(t, translated)
            ]
            if not targets:
                dropped[logical_id] = kind  # schedule rules: the local scheduler runs those
                continue
            kept[logical_id] = {**res, "Properties": {**res["Properties"], "Targets": targets}}
            continue
        kept[logical_id] = res

    def literal(logical_id: str, attribute: str | None) -> str | None:
        if logical_id not in dropped:
            return None
        try:
            value = lookups.get_att(logical_id, attribute) if attribute else lookups.ref(logical_id)
        except UnresolvableError:
            value = f"local-{logical_id}"  # only reaches properties moto does not act on (tags, policies)
        return str(value)

    resources: dict[str, Any] = {}
    for logical_id, original in kept.items():
        res = replace_references(original, literal)
        depends = res.get("DependsOn")
        if depends is not None:
            depends = [depends] if isinstance(depends, str) else depends
            res["DependsOn"] = [d for d in depends if d in kept]
            if not res["DependsOn"]:
                del res["DependsOn"]
        resources[logical_id] = res
    cfn = {k: v for k, v in translated.cfn.items() if k not in ("Resources", "Outputs", "Transform")}
    cfn["Resources"] = resources
    cfn["Outputs"] = replace_references(translated.cfn.get("Outputs") or {}, literal)
    return cfn, dropped


def _targets_function(target: Mapping[str, Any], translated: TranslatedTemplate) -> bool:
    arn = target.get("Arn")
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        arg = arn["Fn::GetAtt"]
        logical_id = arg.partition(".")[0] if isinstance(arg, str) else arg[0]
        return logical_id in translated.functions
    return isinstance(arn, str) and ":lambda:" in arn


def deploy(
    translated: TranslatedTemplate,
    moto: MotoServer,
    parameters: Mapping[str, Any],
    *,
    stack_name: str,
    function_url: str,
    secret_values: Mapping[str, str],
    account_concurrency_quota: int = deploy_rules.DEFAULT_CONCURRENCY_QUOTA,
) -> DeployedResources:
    """Create the stack in moto and return where everything is.

    ``secret_values`` maps secret logical ids to their SecretString (others get a random value, as
    ``GenerateSecretString`` would). Raises ``deploy_rules.DeployRefused`` with AWS's message, before anything is
    created, for what AWS would refuse to create (moto accepts it), as for an account whose Lambda concurrency
    quota is ``account_concurrency_quota``.
    """
    _refuse_what_aws_refuses(translated, parameters, stack_name, account_concurrency_quota)
    lookups = _Lookups(translated, stack_name, function_url)
    resolver = IntrinsicResolver(
        translated.cfn, parameters, region=REGION, stack_name=stack_name, ref=lookups.ref, get_att=lookups.get_att
    )
    lookups.resolver = resolver

    # Secrets first: their ARNs are Ref values other resources and the functions' environment may need. As on
    # AWS, a secret starts at the value the template gives it (GenerateSecretString: a random placeholder), and the
    # values the local stack knows are then put the way the README's deploy steps put them (put-secret-value): a
    # second version, so `cutout doctor` tells a secret that was set from one still at its placeholder the same way
    # on both.
    sm = moto.client("secretsmanager")
    for logical_id, res in translated.resources_of_type(SECRET).items():
        props = res.get("Properties", {})
        name = str(resolver.resolve(props["Name"])) if "Name" in props else f"{stack_name}-{logical_id}"
        initial = props.get("SecretString") or secrets.token_urlsafe(32)
        created = sm.create_secret(Name=name, SecretString=str(resolver.resolve(initial)))
        if secret_values.get(logical_id):
            sm.put_secret_value(SecretId=created["ARN"], SecretString=str(secret_values[logical_id]))
        lookups.physical_ids[logical_id] = created["ARN"]  # Ref of a secret is its ARN

    cfn, dropped = _moto_template(translated, lookups)
    known = set((cfn.get("Parameters") or {}).keys())
    cf = moto.client("cloudformation")
    cf.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(cfn),
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items() if k in known],
    )
    stack = cf.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
    for item in cf.describe_stack_resources(StackName=stack_name)["StackResources"]:
        if "LogicalResourceId" in item:  # moto lists a bare entry (no ids) for a template with a false condition
            lookups.physical_ids[item["LogicalResourceId"]] = item["PhysicalResourceId"]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}

    deployed = DeployedResources(
        stack_name=stack_name,
        physical_ids=dict(lookups.physical_ids),
        types={k: str(v.get("Type")) for k, v in translated.resources.items()},
        outputs=outputs,
        resolver=resolver,
        dropped=dropped,
    )
    _fill_gaps(translated, deployed, resolver, moto)
    return deployed


def _refuse_what_aws_refuses(
    translated: TranslatedTemplate, parameters: Mapping[str, Any], stack_name: str, quota: int
) -> None:
    """The deploy rules the template tests check, on this very stack: CloudFormation would roll the stack back
    with the first refusal (CREATE_FAILED); refusing before creating leaves the same, nothing.

    Parameter constraints are not checked here: the local stack passes values AWS never sees on purpose (a
    loopback http:// Magic Hour URL, second-long poll bounds). Advice (the 6x visibility timeout) is logged only.
    """
    resolved = deploy_rules.resolve_template(translated.cfn, parameters, stack_name=stack_name, region=REGION)
    violations = deploy_rules.check(
        resolved, deploy_rules.Account(concurrency_quota=quota), rules=deploy_rules.RESOURCE_RULES
    )
    for violation in violations:
        if violation.advice:
            log.warning("deploy advice: %s", violation)
    refused = [v for v in violations if not v.advice]
    if refused:
        raise deploy_rules.DeployRefused(stack_name, refused)


def _fill_gaps(
    translated: TranslatedTemplate, deployed: DeployedResources, resolver: IntrinsicResolver, moto: MotoServer
) -> None:
    """Apply the properties moto's CloudFormation accepts but ignores."""
    _fill_bucket_gaps(translated, deployed, resolver, moto)
    cloudwatch = moto.client("cloudwatch")
    for res in translated.resources_of_type("AWS::CloudWatch::Alarm").values():
        props = resolver.resolve(res.get("Properties", {}))
        if "AlarmName" not in props:
            continue  # CloudFormation would generate a name; nothing local looks such an alarm up
        cloudwatch.put_metric_alarm(**{k: v for k, v in props.items() if k in ALARM_PROPERTIES})

    ddb = moto.client("dynamodb")
    for logical_id, res in translated.resources_of_type("AWS::DynamoDB::Table").items():
        props = resolver.resolve(res.get("Properties", {}))
        table = deployed.physical_ids[logical_id]
        if moto.dynamodb_endpoint_url != moto.endpoint_url:
            _move_table(moto, table)
        ttl = props.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled") in (True, "true"):
            ddb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )


def _fill_bucket_gaps(
    translated: TranslatedTemplate, deployed: DeployedResources, resolver: IntrinsicResolver, moto: MotoServer
) -> None:
    """Versioning and notifications of the buckets the stack creates."""
    s3 = moto.client("s3")
    for logical_id, res in translated.resources_of_type("AWS::S3::Bucket").items():
        if logical_id not in deployed.physical_ids:
            continue  # its condition is false (an existing bucket was given)
        props = resolver.resolve(res.get("Properties", {}))
        bucket = deployed.physical_ids[logical_id]
        if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        notification = props.get("NotificationConfiguration") or {}
        config: dict[str, Any] = {}
        if (notification.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled") in (True, "true"):
            config["EventBridgeConfiguration"] = {}
        queue_configs = [
            {
                "QueueArn": q["Queue"],
                "Events": [q["Event"]],
                **({"Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}}} if "Filter" in q else {}),
            }
            for q in notification.get("QueueConfigurations") or []
        ]
        if queue_configs:
            config["QueueConfigurations"] = queue_configs
        if notification.get("LambdaConfigurations"):
            log.warning("%s: S3 → Lambda notifications are not run locally", logical_id)
        if config:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)


# What create_table takes back of an index from describe_table.
_INDEX_KEYS = ("IndexName", "KeySchema", "Projection")


def _move_table(moto: MotoServer, table: str) -> None:
    """Re-create a table CloudFormation made in moto's main process in its DynamoDB process (``MotoServer``:
    DynamoDB served apart), and drop the original, so every call finds the one table where boto3 sends it."""
    origin = moto.client("dynamodb", endpoint_url=moto.endpoint_url)
    desc = origin.describe_table(TableName=table)["Table"]
    spec: dict[str, Any] = {k: desc[k] for k in ("AttributeDefinitions", "KeySchema")}
    on_demand = (desc.get("BillingModeSummary") or {}).get("BillingMode") == "PAY_PER_REQUEST"
    if on_demand:
        spec["BillingMode"] = "PAY_PER_REQUEST"
    else:
        throughput = desc.get("ProvisionedThroughput") or {}
        spec["ProvisionedThroughput"] = {
            "ReadCapacityUnits": throughput.get("ReadCapacityUnits") or 1,
            "WriteCapacityUnits": throughput.get("WriteCapacityUnits") or 1,
        }
    indexes = []
    for index in desc.get("GlobalSecondaryIndexes") or []:
        entry = {k: index[k] for k in _INDEX_KEYS}
        if not on_demand:
            entry["ProvisionedThroughput"] = spec["ProvisionedThroughput"]
        indexes.append(entry)
    if indexes:
        spec["GlobalSecondaryIndexes"] = indexes
    if desc.get("LocalSecondaryIndexes"):
        spec["LocalSecondaryIndexes"] = [{k: i[k] for k in _INDEX_KEYS} for i in desc["LocalSecondaryIndexes"]]
    if desc.get("StreamSpecification"):
        spec["StreamSpecification"] = desc["StreamSpecification"]
    moto.client("dynamodb").create_table(TableName=table, **spec)
    origin.delete_table(TableName=table)
