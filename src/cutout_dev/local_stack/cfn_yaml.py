"""Load a CloudFormation/SAM YAML template, short-form intrinsics included — the one template loader of the dev
tooling and the tests.

cfn-lint's decoder (a dev dependency, the same one `make lint` validates the template with) turns every ``!X``
tag into its long form (``!Ref`` → ``{"Ref": ...}``, ``!GetAtt a.b`` → ``{"Fn::GetAtt": ["a", "b"]}``); a JSON
round trip then gives plain dicts and lists (its nodes carry source marks we do not need).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any


@cache
def _load(path: Path, mtime_ns: int) -> str:
    from cfnlint.decode import cfn_yaml

    return json.dumps(cfn_yaml.load(str(path)))


def load_template(path: Path) -> dict[str, Any]:
    """Parse ``path`` into the JSON-shaped dict CloudFormation (and samtranslator) expect (a fresh copy per call)."""
    data = json.loads(_load(path.resolve(), path.stat().st_mtime_ns))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a template (top level is {type(data).__name__})")
    return data
