"""Resolving a translated template as CloudFormation would create it for a stack name: conditions evaluated and
references answered with values of AWS's shapes and lengths (``ResourceValue``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cutout_dev.local_stack.deploy_rules.model import (
    EVENTS_RULE,
    FUNCTION,
    LOG_GROUP,
    QUEUE,
    ResolvedTemplate,
    ResourceValue,
)
from cutout_dev.local_stack.intrinsics import ACCOUNT_ID, IntrinsicResolver, UnresolvableError

# ----------------------------------------------------------------------------------------------- resolving
# CloudFormation names what a template leaves unnamed "<stack>-<logical id>-<random suffix>", shortened to fit the
# service's limit (CloudFormation User Guide, "Name type"): generated names never exceed a limit, named ones may.
_SUFFIX = "ABCDEFGHIJKL"


def _generated_name(stack: str, logical_id: str, limit: int, *, lower: bool = False) -> str:
    base = f"{stack}-{logical_id}"[: limit - len(_SUFFIX) - 1]
    name = f"{base}-{_SUFFIX}"
    return name.lower() if lower else name


Values = dict[str | None, str]  # Ref's answer under None, GetAtt's under the attribute's name


class _PhysicalValues:
    """Ref/GetAtt answers with AWS's shapes and lengths for the stack name (no AWS call: nothing exists yet)."""

    def __init__(self, cfn: Mapping[str, Any], stack_name: str, region: str) -> None:
        self._resources: Mapping[str, Any] = cfn.get("Resources") or {}
        self._stack = stack_name
        self._region = region
        self.resolver: IntrinsicResolver | None = None

    def _named(self, logical_id: str, prop: str, limit: int, *, lower: bool = False) -> str:
        props = self._resources[logical_id].get("Properties") or {}
        if prop in props and self.resolver is not None:
            return str(self.resolver.resolve(props[prop]))
        return _generated_name(self._stack, logical_id, limit, lower=lower)

    def _arn(self, service: str) -> str:
        return f"arn:aws:{service}:{self._region}:{ACCOUNT_ID}:"

    def _queue(self, logical_id: str) -> Values:
        name = self._named(logical_id, "QueueName", 80)
        url = f"https://sqs.{self._region}.amazonaws.com/{ACCOUNT_ID}/{name}"
        return {None: url, "Arn": self._arn("sqs") + name, "QueueName": name, "QueueUrl": url}

    def _table(self, logical_id: str) -> Values:
        name = self._named(logical_id, "TableName", 255)
        table_arn = self._arn("dynamodb") + f"table/{name}"
        return {None: name, "Arn": table_arn, "StreamArn": f"{table_arn}/stream/2026-01-01T00:00:00.000"}

    def _bucket(self, logical_id: str) -> Values:
        name = self._named(logical_id, "BucketName", 63, lower=True)
        return {
            None: name,
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self._region}.amazonaws.com",
        }

    def _function(self, logical_id: str) -> Values:
        name = self._named(logical_id, "FunctionName", 64)
        return {None: name, "Arn": self._arn("lambda") + f"function:{name}"}

    def _secret(self, logical_id: str) -> Values:
        name = self._named(logical_id, "Name", 512)
        secret_arn = self._arn("secretsmanager") + f"secret:{name}-AbCdEf"
        return {None: secret_arn, "Id": secret_arn}

    def _function_url(self, logical_id: str) -> Values:
        url = f"https://{'a' * 32}.lambda-url.{self._region}.on.aws/"
        return {None: url, "FunctionUrl": url, "FunctionArn": self._arn("lambda") + "function:url"}

    def _rule(self, logical_id: str) -> Values:
        name = self._named(logical_id, "Name", 64)
        return {None: name, "Arn": self._arn("events") + f"rule/{name}"}

    def _topic(self, logical_id: str) -> Values:
        name = self._named(logical_id, "TopicName", 256)
        return {None: self._arn("sns") + name, "TopicArn": self._arn("sns") + name, "TopicName": name}

    def _key(self, logical_id: str) -> Values:
        key_id = "0123abcd-4567-89ef-0123-456789abcdef"
        return {None: key_id, "Arn": self._arn("kms") + f"key/{key_id}", "KeyId": key_id}

    def _log_group(self, logical_id: str) -> Values:
        name = self._named(logical_id, "LogGroupName", 512)
        return {None: name, "Arn": self._arn("logs") + f"log-group:{name}:*"}

    def _alarm(self, logical_id: str) -> Values:
        name = self._named(logical_id, "AlarmName", 255)
        return {None: name, "Arn": self._arn("cloudwatch") + f"alarm:{name}"}

    def _role(self, logical_id: str) -> Values:
        name = _generated_name(self._stack, logical_id, 64)
        return {None: name, "Arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}", "RoleId": "AROA" + "A" * 17}

    def _layer(self, logical_id: str) -> Values:
        return {None: self._arn("lambda") + f"layer:{_generated_name(self._stack, logical_id, 64)}:1"}

    def _other(self, logical_id: str) -> Values:
        name = _generated_name(self._stack, logical_id, 255)
        return {None: name, "Arn": self._arn("cloudformation") + name}

    def _values(self, logical_id: str) -> Values:
        if logical_id not in self._resources:
            raise UnresolvableError(f"unknown resource {logical_id}")
        kind = str(self._resources[logical_id].get("Type"))
        shapes: dict[str, Callable[[str], Values]] = {
            QUEUE: self._queue,
            "AWS::DynamoDB::Table": self._table,
            "AWS::S3::Bucket": self._bucket,
            FUNCTION: self._function,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Lambda::Url": self._function_url,
            EVENTS_RULE: self._rule,
            "AWS::SNS::Topic": self._topic,
            "AWS::KMS::Key": self._key,
            LOG_GROUP: self._log_group,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::IAM::Role": self._role,
            "AWS::Lambda::LayerVersion": self._layer,
        }
        return shapes.get(kind, self._other)(logical_id)

    def ref(self, logical_id: str) -> ResourceValue:
        return ResourceValue(self._values(logical_id)[None], logical_id)

    def get_att(self, logical_id: str, attribute: str) -> ResourceValue:
        values = self._values(logical_id)
        # An attribute not modelled here still resolves (to a plain ARN-shaped value): rules only follow links.
        text = values.get(attribute) or values.get("Arn") or values[None]
        return ResourceValue(text, logical_id, attribute)


def resolve_template(
    cfn: Mapping[str, Any], parameters: Mapping[str, Any], *, stack_name: str, region: str = "us-east-1"
) -> ResolvedTemplate:
    """``cfn`` (a translated template: no ``AWS::Serverless`` types left) as created for ``parameters``."""
    physical = _PhysicalValues(cfn, stack_name, region)
    resolver = IntrinsicResolver(
        cfn, parameters, region=region, stack_name=stack_name, ref=physical.ref, get_att=physical.get_att
    )
    physical.resolver = resolver
    resources: dict[str, dict[str, Any]] = {}
    for logical_id, res in (cfn.get("Resources") or {}).items():
        condition = res.get("Condition")
        if condition is not None and not resolver.condition(str(condition)):
            continue
        resources[logical_id] = {"Type": res.get("Type"), "Properties": resolver.resolve(res.get("Properties") or {})}
    rules: list[tuple[str, bool, list[tuple[bool, str]]]] = []
    for name, rule in (cfn.get("Rules") or {}).items():
        applies = bool(resolver.resolve(rule["RuleCondition"])) if "RuleCondition" in rule else True
        assertions = [
            (bool(resolver.resolve(a["Assert"])), str(a.get("AssertDescription", f"Rule {name} failed")))
            for a in rule.get("Assertions") or []
        ]
        rules.append((str(name), applies, assertions))
    return ResolvedTemplate(
        resources=resources,
        parameters=dict(resolver.parameters),
        parameter_specs={k: dict(v) for k, v in (cfn.get("Parameters") or {}).items()},
        rules=rules,
        stack_name=stack_name,
        region=region,
    )
