"""Load a CloudFormation/SAM YAML template, short-form intrinsics included.

PyYAML rejects ``!Ref``/``!Sub``/... tags; SAM CLI and cfn-lint each ship their own loader, but neither is a
dependency of the dev environment's runtime path, so this is the twenty-line equivalent: every ``!X`` tag becomes
the long form ``{"Fn::X": ...}`` (``!Ref`` → ``Ref``, ``!GetAtt a.b`` → ``["a", "b"]``, ``!Condition``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]  # yaml is untyped here
    """SafeLoader plus CloudFormation's short-form intrinsic functions."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{tag_suffix}", node.start_mark)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # "Resource.Attr.With.Dots" → the first dot separates the logical id from the attribute name.
        logical_id, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    """Parse ``path`` into the JSON-shaped dict CloudFormation (and samtranslator) expect."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a template (top level is {type(data).__name__})")
    return data
