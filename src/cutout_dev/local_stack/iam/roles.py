"""Each function's role, from the translated template: inline policies resolved, AWS managed policies spelled out.

SAM gives every ``AWS::Serverless::Function`` a role ``<Function>Role`` with the function's ``Policies`` as inline
policies and AWS managed policies for what SAM itself needs (basic execution, X-Ray, the SQS poller). Those are
used by the Lambda service (the event source mapping, logs, traces), not by Cutout's code, and are included with
their documented content so a function's code gets no more and no less than on AWS.

``CUTOUT_IAM_WITHOUT=<Function>:<Sid>[:<action>]`` removes one statement, or one action of a statement, from the
roles as they are registered: the mutation check (cutout_dev.iam_check) runs a test with it to show the grant is
needed.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from cutout_dev.local_stack.intrinsics import NO_VALUE, IntrinsicResolver, UnresolvableError
from cutout_dev.local_stack.template import TranslatedTemplate

WITHOUT_VARIABLE = "CUTOUT_IAM_WITHOUT"
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]

# The AWS managed policies SAM attaches, as the IAM console shows their default versions.
MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    },
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": "*",
            }
        ],
    },
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS],
                "Resource": "*",
            }
        ],
    },
}

Documents = list[tuple[str, dict[str, Any]]]


def role_id_of(translated: TranslatedTemplate, function_id: str) -> str:
    role = (translated.resources[function_id].get("Properties") or {}).get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        arg = role["Fn::GetAtt"]
        return str(arg[0] if isinstance(arg, list) else arg.partition(".")[0])
    raise ValueError(f"{function_id}: its role is not one of the template's (Role: {role!r})")


def _resolve_statement(statement: Mapping[str, Any], resolve: Callable[[Any], Any]) -> dict[str, Any] | None:
    """Resolve one statement; a Resource entry naming something that does not exist here is left out (it could
    match nothing), and a statement left with no resource is dropped."""
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key in ("Resource", "NotResource"):
            entries = value if isinstance(value, list) else [value]
            kept = []
            for entry in entries:
                try:
                    resolved = resolve(entry)
                except UnresolvableError:
                    continue
                if resolved is NO_VALUE:
                    continue
                kept.extend(resolved if isinstance(resolved, list) else [resolved])
            if not kept:
                return None
            out[key] = kept
        else:
            out[key] = resolve(value)
    return out


def _choose(statement: Any, resolve: Callable[[Any], Any]) -> dict[str, Any] | None:
    """A statement behind ``Fn::If`` (the branch its condition picks; None for ``AWS::NoValue``)."""
    while isinstance(statement, dict) and len(statement) == 1 and "Fn::If" in statement:
        condition, when_true, when_false = statement["Fn::If"]
        statement = when_true if resolve({"Fn::If": [condition, "1", "0"]}) == "1" else when_false
    if not isinstance(statement, dict) or statement == {"Ref": "AWS::NoValue"}:
        return None
    return statement


def function_roles(
    translated: TranslatedTemplate,
    resolver: Callable[[str], Callable[[Any], Any]],
    functions: list[str] | None = None,
) -> dict[str, Documents]:
    """Function logical id -> [(policy name, resolved document)], inline policies first.

    ``resolver(function_id)`` gives the resolve function to use for that function's role."""
    roles: dict[str, Documents] = {}
    for function_id in functions or list(translated.functions):
        role = translated.resources[role_id_of(translated, function_id)].get("Properties") or {}
        resolve = resolver(function_id)
        documents: Documents = []
        for policy in role.get("Policies") or []:
            raw = resolve(policy.get("PolicyName", "inline"))
            statements = policy["PolicyDocument"].get("Statement", [])
            kept = []
            for st in statements if isinstance(statements, list) else [statements]:
                chosen = _choose(st, resolve)
                done = None if chosen is None else _resolve_statement(chosen, resolve)
                if done is not None:
                    kept.append(done)
            documents.append((str(raw), {"Version": "2012-10-17", "Statement": kept}))
        for managed in role.get("ManagedPolicyArns") or []:
            arn = str(resolve(managed))
            if arn not in MANAGED_POLICIES:
                raise ValueError(f"{function_id}: managed policy {arn} is not modelled locally (add its document)")
            documents.append((arn.rsplit("/", 1)[-1], copy.deepcopy(MANAGED_POLICIES[arn])))
        roles[function_id] = documents
    return apply_without(roles, os.environ.get(WITHOUT_VARIABLE, ""))


def apply_without(roles: dict[str, Documents], without: str) -> dict[str, Documents]:
    """Remove ``<Function>:<Sid>[:<action>]`` from the roles (the mutation check); it must name something."""
    if not without:
        return roles
    function_id, _, rest = without.partition(":")
    sid, _, action = rest.partition(":")
    if function_id not in roles:
        return roles  # another function's mutation: this one is registered as it is
    hit = False
    for _, document in roles[function_id]:
        kept = []
        for st in document["Statement"]:
            if st.get("Sid") != sid:
                kept.append(st)
                continue
            hit = True
            if action:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                remaining = [a for a in actions if a != action]
                if len(remaining) == len(actions):
                    raise ValueError(f"{without}: statement {sid} has no action {action}")
                if remaining:
                    kept.append({**st, "Action": remaining})
        document["Statement"] = kept
    if not hit:
        raise ValueError(f"{without}: {function_id} has no statement {sid}")
    return roles


class _EnvironmentReading:
    """What a hand-made function's environment says about the template's references: parameter values and the
    physical ids of resources, learned expression by expression."""

    def __init__(
        self, translated: TranslatedTemplate, secret_arn: Callable[[str], str], region: str, account: str
    ) -> None:
        self.params = set((translated.cfn.get("Parameters") or {}).keys())
        self.resources = translated.resources
        self.secret_arn = secret_arn
        self.region = region
        self.account = account
        self.parameters: dict[str, Any] = {}
        self.physical: dict[str, str] = {}

    def learn(self, expression: Any, value: str, resolver: IntrinsicResolver | None) -> None:
        if not isinstance(expression, dict) or len(expression) != 1:
            return
        ((fn, arg),) = expression.items()
        if fn == "Ref" and isinstance(arg, str):
            if arg in self.params:
                self.parameters[arg] = value
            elif arg in self.resources:
                self.physical[arg] = value
        elif fn == "Fn::If" and resolver is not None:
            self.learn(arg[1] if resolver.condition(arg[0]) else arg[2], value, resolver)

    def ref(self, logical_id: str) -> str:
        if logical_id not in self.physical:
            raise UnresolvableError(f"{logical_id} is not in this function's environment")
        kind = self.resources[logical_id].get("Type")
        if kind == "AWS::SecretsManager::Secret":
            return self.secret_arn(self.physical[logical_id])  # Ref of a secret is its ARN
        return self.physical[logical_id]

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources.get(logical_id, {}).get("Type")
        value = self.ref(logical_id)
        if attribute != "Arn":
            raise UnresolvableError(f"GetAtt {logical_id}.{attribute}")
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{self.region}:{self.account}:{urlparse(value).path.rsplit('/', 1)[-1]}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{value}"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{value}"
        raise UnresolvableError(f"GetAtt {logical_id}.Arn ({kind})")

    def resolver(self, template: dict[str, Any]) -> IntrinsicResolver:
        return IntrinsicResolver(
            template, self.parameters, region=self.region, stack_name="test", ref=self.ref, get_att=self.get_att
        )


def environment_resolver(
    translated: TranslatedTemplate,
    function_id: str,
    environment: Mapping[str, str],
    *,
    secret_arn: Callable[[str], str],
    region: str,
    account: str,
) -> Callable[[Any], Any]:
    """A resolver for a function whose resources were made by hand (the integration tests): what each template
    reference is, learned from the environment the function was given (``JOBS_TABLE: !Ref JobsTable`` and
    ``JOBS_TABLE=cutout-jobs`` say the table is cutout-jobs)."""
    spec = translated.functions[function_id]
    reading = _EnvironmentReading(translated, secret_arn, region, account)
    for name, expression in spec.environment.items():
        if name in environment:
            reading.learn(expression, environment[name], None)
    # Once more with a resolver, for the references behind conditions (their parameters are known now).
    resolver = reading.resolver(translated.cfn)
    for name, expression in spec.environment.items():
        if name in environment:
            reading.learn(expression, environment[name], resolver)
    return reading.resolver(translated.cfn).resolve
