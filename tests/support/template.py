"""Read template.yaml the way CloudFormation does (short-form intrinsic tags included)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from cutout_dev.local_stack import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@cache
def load_template() -> dict[str, Any]:
    return cfn_yaml.load_template(TEMPLATE)


def resource(logical_id: str) -> dict[str, Any]:
    return dict(load_template()["Resources"][logical_id])


def table_definition(logical_id: str = "JobsTable") -> dict[str, Any]:
    """The create_table arguments for the jobs table, straight from the template (one source of truth)."""
    props = resource(logical_id)["Properties"]
    args: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = [
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in props["GlobalSecondaryIndexes"]
        ]
    return args
