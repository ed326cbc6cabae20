"""Names the template builds from the stack name that cfn-lint does not check: the dashboard's. (Log groups'
retention and names, alarm and secret names are cfn-lint's: lint.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cutout_dev.local_stack.deploy_rules.model import (
    Account,
    ResolvedTemplate,
    Violation,
)

_DASHBOARD_DOC = 'Amazon CloudWatch API Reference, "PutDashboard" (DashboardName: A-Z a-z 0-9 - _, up to 255)'
_DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def other_names(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """The dashboard's name, built from the stack name: at most 255 of A-Z a-z 0-9 - _."""
    for logical_id, res in t.of_type("AWS::CloudWatch::Dashboard").items():
        name = res["Properties"].get("DashboardName")
        if name is not None and not _DASHBOARD_NAME.match(str(name)):
            yield Violation(
                "names.length",
                logical_id,
                f"1 validation error detected: Value '{name}' at 'DashboardName' failed to satisfy constraint",
                _DASHBOARD_DOC,
            )
