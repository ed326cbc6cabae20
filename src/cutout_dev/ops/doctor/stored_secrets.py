"""The secrets' check: each one put after it was created (not still at its generated placeholder)."""

from __future__ import annotations

from typing import Any

from cutout_dev.ops.doctor.base import (
    Check,
    DoctorContext,
    as_epoch,
)


class SecretChecks:
    def __init__(self, ctx: DoctorContext) -> None:
        self.ctx = ctx

    # -- secrets ---
    def secret_set(self, name: str, logical_id: str, variable: str) -> Check:
        """A secret still at its generated placeholder: its current version is the one it was created with.

        CloudFormation creates the secret with one version, its GenerateSecretString value; the README's deploy
        steps put the real value with put-secret-value, a new version that takes the AWSCURRENT label
        ("Secrets Manager: secret versions and staging labels"). So the value was set iff AWSCURRENT is on a
        later version than the first (a roll-back of the label to the first version counts as not set).
        """
        secret_id = self.ctx.secret_id(logical_id)
        sm = self.ctx.target.client("secretsmanager")
        versions: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": True}
        while True:  # botocore has no paginator for it
            page = sm.list_secret_version_ids(**kwargs)
            versions.extend(page.get("Versions", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        # Oldest first by CreatedDate; moto stamps every version with the time of the call, and lists them in
        # the order they were made, so the listing order breaks ties.
        ordered = [
            v for _, v in sorted(enumerate(versions), key=lambda iv: (as_epoch(iv[1].get("CreatedDate")), iv[0]))
        ]
        current = next((v for v in ordered if "AWSCURRENT" in v.get("VersionStages", [])), None)
        fix = self.ctx.put_secret(logical_id, variable)
        if current is None:
            return Check(name, "fail", f"{secret_id} has no current value", fix)
        if current is ordered[0]:
            return Check(
                name,
                "fail",
                f"{secret_id} is still at the placeholder it was created with ({len(versions)} version(s), the "
                "current one is the first): it was never put",
                fix,
            )
        return Check(name, "ok", f"{secret_id} was put after it was created ({len(versions)} versions)")
