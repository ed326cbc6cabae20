"""A small CloudFormation intrinsic-function evaluator.

Used for the values CloudFormation would compute for the parts moto does not run (function environments, secret
names, references to dropped resources). moto resolves the resources it creates itself; this resolver only needs
to *read* the results: physical ids and attributes come from callbacks backed by the created stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account; every ARN the local stack builds uses it

_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


class _NoValue:
    """``AWS::NoValue``: the property disappears from its parent."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class UnresolvableError(ValueError):
    """A reference the resolver cannot answer (unknown resource or attribute)."""


RefLookup = Callable[[str], Any]
AttrLookup = Callable[[str, str], Any]


class IntrinsicResolver:
    """Evaluate ``Ref``/``Fn::*`` expressions against parameters, pseudo parameters and resource lookups."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        *,
        region: str,
        stack_name: str,
        ref: RefLookup,
        get_att: AttrLookup,
    ) -> None:
        self._template = template
        self._region = region
        self._stack_name = stack_name
        self._ref = ref
        self._get_att = get_att
        self.parameters: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in parameters:
                self.parameters[name] = parameters[name]
            elif isinstance(spec, Mapping) and "Default" in spec:
                self.parameters[name] = spec["Default"]
        self._conditions: dict[str, bool] = {}

    # -- pseudo parameters -------------------------------------------------------------------------------------
    def pseudo(self, name: str) -> Any:
        values: dict[str, Any] = {
            "AWS::Region": self._region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self._stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self._region}:{ACCOUNT_ID}:stack/{self._stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise UnresolvableError(f"unknown pseudo parameter {name}")
        return values[name]

    # -- conditions --------------------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            expr = (self._template.get("Conditions") or {}).get(name)
            if expr is None:
                raise UnresolvableError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(expr))
        return self._conditions[name]

    # -- evaluation --------------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """Return ``value`` with every intrinsic evaluated (``NO_VALUE`` entries dropped from containers)."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = self._FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
        out = {}
        for k, v in value.items():
            resolved = self.resolve(v)
            if resolved is not NO_VALUE:
                out[k] = resolved
        return out

    def resolve_str(self, value: Any) -> str:
        """Resolve and render the way CloudFormation renders environment values (numbers/bools as text)."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, (dict, list)):
            raise UnresolvableError(f"expected a scalar, got {resolved!r}")
        return str(resolved)

    def _fn_ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise UnresolvableError(f"bad Ref {name!r}")
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self._coerce_parameter(name, self.parameters[name])
        return self._ref(name)

    def _coerce_parameter(self, name: str, value: Any) -> Any:
        spec = (self._template.get("Parameters") or {}).get(name) or {}
        if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
            return [v.strip() for v in str(value).split(",")] if isinstance(value, str) else value
        return value

    def _fn_get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            logical_id, _, attribute = arg.partition(".")
        else:
            logical_id, attribute = str(arg[0]), str(self.resolve(arg[1]))
        return self._get_att(logical_id, attribute)

    def _fn_sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = str(arg[0]), {k: self.resolve(v) for k, v in dict(arg[1]).items()}
        else:
            text, variables = str(arg), {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} renders as ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, _, attribute = name.partition(".")
                return str(self._get_att(logical_id, attribute))
            return str(self._fn_ref(name))

        return _SUB_VAR.sub(replace, text)

    def _fn_join(self, arg: Any) -> str:
        delimiter, items = arg
        return str(delimiter).join(str(v) for v in self.resolve(items))

    def _fn_select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_split(self, arg: Any) -> list[str]:
        delimiter, text = arg
        return str(self.resolve(text)).split(str(delimiter))

    def _fn_if(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_equals(self, arg: Any) -> bool:
        left, right = (self.resolve(v) for v in arg)
        return str(left) == str(right)

    def _fn_not(self, arg: Any) -> bool:
        return not self.resolve(arg[0])

    def _fn_and(self, arg: Any) -> bool:
        return all(self.resolve(v) for v in arg)

    def _fn_or(self, arg: Any) -> bool:
        return any(self.resolve(v) for v in arg)

    def _fn_condition(self, arg: Any) -> bool:
        return self.condition(str(arg))

    def _fn_find_in_map(self, arg: Any) -> Any:
        map_name, top, second = (self.resolve(v) for v in arg[:3])
        return self._template["Mappings"][map_name][top][second]

    def _fn_get_azs(self, arg: Any) -> list[str]:
        region = self.resolve(arg) or self._region
        return [f"{region}{az}" for az in "abc"]

    def _fn_to_json_string(self, arg: Any) -> str:
        import json

        return json.dumps(self.resolve(arg))

    _FUNCTIONS: dict[str, Callable[[IntrinsicResolver, Any], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Condition": _fn_condition,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::ToJsonString": _fn_to_json_string,
    }


def references(value: Any) -> set[str]:
    """Logical ids (resources or parameters) an expression refers to, through Ref, GetAtt and Sub."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= references(v)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg.partition(".")[0] if isinstance(arg, str) else str(arg[0]))
            elif key == "Fn::Sub":
                text = arg[0] if isinstance(arg, list) else arg
                local = set(arg[1]) if isinstance(arg, list) else set()
                for name in _SUB_VAR.findall(str(text)):
                    if not name.startswith("!") and name not in local:
                        found.add(name.partition(".")[0] if not name.startswith("AWS::") else name)
                if isinstance(arg, list):
                    found |= references(arg[1])
            else:
                found |= references(arg)
    return found


def _literal_reference(key: str, arg: Any, literal: Callable[[str, str | None], str | None]) -> str | None:
    """The literal for a one-key Ref or Fn::GetAtt, when ``literal`` gives one."""
    if key == "Ref" and isinstance(arg, str):
        return literal(arg, None)
    if key == "Fn::GetAtt":
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else (str(arg[0]), str(arg[1]))
        return literal(logical_id, attribute)
    return None


def _replace_sub(arg: Any, literal: Callable[[str, str | None], str | None]) -> dict[str, Any]:
    """An Fn::Sub with the ``${...}`` references ``literal`` gives a string for written out."""
    text_arg = arg[0] if isinstance(arg, list) else arg

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!") or name.startswith("AWS::"):
            return match.group(0)
        logical_id, _, attribute = name.partition(".")
        got = literal(logical_id, attribute or None)
        return got if got is not None else match.group(0)

    new_text = _SUB_VAR.sub(replace, str(text_arg))
    if isinstance(arg, list):
        return {"Fn::Sub": [new_text, replace_references(arg[1], literal)]}
    return {"Fn::Sub": new_text}


def replace_references(value: Any, literal: Callable[[str, str | None], str | None]) -> Any:
    """Copy ``value`` replacing Ref/GetAtt/Sub references for which ``literal(logical_id, attr)`` gives a string.

    moto's CloudFormation must not see references to resources it will not create (functions, secrets, Function
    URLs); they are replaced by the literal values the local stack gives those resources.
    """
    if isinstance(value, list):
        return [replace_references(v, literal) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Fn::Sub":
            return _replace_sub(arg, literal)
        text = _literal_reference(key, arg, literal)
        if text is not None:
            return text
    return {k: replace_references(v, literal) for k, v in value.items()}
