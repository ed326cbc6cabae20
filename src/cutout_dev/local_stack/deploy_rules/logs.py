"""CloudWatch Logs' refusals (retention, log group names) and other services' name rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from cutout_dev.local_stack.deploy_rules.model import (
    LOG_GROUP,
    Account,
    ResolvedTemplate,
    Violation,
    as_int,
)

# ----------------------------------------------------------------------------------------------- logs, names
_LOGS_DOC = 'Amazon CloudWatch Logs API Reference, "PutRetentionPolicy" and "CreateLogGroup"'
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
_LOG_GROUP_NAME = re.compile(r"^[\.\-_/#A-Za-z0-9]{1,512}$")


def log_groups(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """RetentionInDays among CloudWatch Logs' values; log group names 1..512 of its characters."""
    for logical_id, res in t.of_type(LOG_GROUP).items():
        props = res["Properties"]
        if "RetentionInDays" in props and as_int(props["RetentionInDays"], 0) not in RETENTION_DAYS:
            yield Violation(
                "logs.retention",
                logical_id,
                f"1 validation error detected: Value '{props['RetentionInDays']}' at 'retentionInDays' failed to "
                f"satisfy constraint: Member must satisfy enum value set: [{', '.join(map(str, RETENTION_DAYS))}]",
                _LOGS_DOC,
            )
        if "LogGroupName" in props and not _LOG_GROUP_NAME.match(str(props["LogGroupName"])):
            yield Violation(
                "logs.log-group-name",
                logical_id,
                f"1 validation error detected: Value '{props['LogGroupName']}' at 'logGroupName' failed to satisfy "
                "constraint: Member must have length less than or equal to 512 and match [\\.\\-_/#A-Za-z0-9]+",
                _LOGS_DOC,
            )


_NAMES_DOC = (
    'Amazon CloudWatch API Reference, "PutMetricAlarm" and "PutDashboard"; AWS Secrets Manager API Reference, '
    '"CreateSecret"'
)
_DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def other_names(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    """Names the template builds from the stack name: alarms (<= 255), the dashboard (<= 255 of A-Z a-z 0-9 - _),
    secrets (<= 512)."""
    checks: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
        ("AWS::CloudWatch::Alarm", "AlarmName", lambda n: 1 <= len(n) <= 255),
        ("AWS::CloudWatch::Dashboard", "DashboardName", lambda n: bool(_DASHBOARD_NAME.match(n))),
        ("AWS::SecretsManager::Secret", "Name", lambda n: 1 <= len(n) <= 512),
    )
    for kind, prop, valid in checks:
        for logical_id, res in t.of_type(kind).items():
            name = res["Properties"].get(prop)
            if name is not None and not valid(str(name)):
                yield Violation(
                    "names.length",
                    logical_id,
                    f"1 validation error detected: Value '{name}' at '{prop}' failed to satisfy constraint",
                    _NAMES_DOC,
                )
