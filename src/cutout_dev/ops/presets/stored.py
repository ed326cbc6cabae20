"""The presets document a stack uses: an SSM parameter (the stack's output ``PresetsParameterName``), JSON.

The operator changes it without a redeploy (``cutout presets set``); the renditions function reads it and caches it
briefly. Absent or ``{}`` means no presets: no renditions and no extra cost. What is stored is the compact JSON of
a document that parsed (the same bytes the size limit was measured on), so what the function reads is what
``cutout presets check`` accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from cutout.renditions.presets import PresetDocument, PresetError

from cutout_dev.ops.output import iso
from cutout_dev.ops.target import StackTarget, TargetError


@dataclass(frozen=True)
class StoredPresets:
    """What the parameter holds now (``text`` None: there is no parameter yet, the same as no presets)."""

    parameter: str
    text: str | None
    version: int | None = None
    modified: str | None = None

    @property
    def raw(self) -> Any:
        """The stored JSON as a value ({} when nothing is stored, the text itself when it is not JSON: then
        ``problems`` says so)."""
        if not self.text or not self.text.strip():
            return {}
        try:
            return json.loads(self.text)
        except ValueError:
            return self.text

    def problems(self) -> list[str]:
        """Why the functions cannot use what is stored, one line each; [] when it parses."""
        try:
            PresetDocument.parse(self.text)
        except PresetError as exc:
            return exc.problems
        return []

    def document(self) -> PresetDocument:
        """The parsed document; TargetError naming the problems (and the fix) when it does not parse."""
        try:
            return PresetDocument.parse(self.text)
        except PresetError as exc:
            raise TargetError(
                f"the presets stored in {self.parameter} do not parse: {'; '.join(exc.problems)} "
                "(fix the file, `cutout presets check FILE`, then `cutout presets set FILE`)"
            ) from exc


class PresetsParameter:
    """Reads and writes the stack's presets parameter."""

    def __init__(self, ssm: Any, name: str) -> None:
        self.ssm = ssm
        self.name = name

    @classmethod
    def of(cls, target: StackTarget) -> PresetsParameter:
        return cls(target.client("ssm"), target.presets_parameter)

    def read(self) -> StoredPresets:
        try:
            found = self.ssm.get_parameter(Name=self.name)["Parameter"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return StoredPresets(self.name, None)
            raise
        modified = found.get("LastModifiedDate")
        return StoredPresets(
            self.name,
            str(found.get("Value", "")),
            int(found["Version"]) if found.get("Version") is not None else None,
            iso(modified) if isinstance(modified, datetime) else (str(modified) if modified else None),
        )

    def write(self, document: Mapping[str, Any]) -> int:
        """Store the document as compact JSON (a new version of the parameter); returns that version.

        Standard tier: the document is bounded to what a standard parameter holds (4 KB), so storing it costs
        nothing. The parameter may exist already (the template creates it with ``{}``): it is overwritten."""
        text = compact(document)
        answer = self.ssm.put_parameter(Name=self.name, Value=text, Type="String", Overwrite=True, Tier="Standard")
        return int(answer.get("Version", 0))


def compact(document: Mapping[str, Any]) -> str:
    """The bytes stored: compact JSON, keys in the document's order (as PresetDocument measured its size)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def changes(before: Any, after: Mapping[str, Any]) -> dict[str, list[str]]:
    """Which presets a new document adds, changes and removes, and whether its rules differ (names only)."""
    old = before.get("presets", {}) if isinstance(before, Mapping) else {}
    old = old if isinstance(old, Mapping) else {}
    new = after.get("presets", {}) or {}
    rules_before = before.get("rules", []) if isinstance(before, Mapping) else []
    return {
        "added": sorted(n for n in new if n not in old),
        "changed": sorted(n for n in new if n in old and old[n] != new[n]),
        "removed": sorted(n for n in old if n not in new),
        "rules": ["changed"] if rules_before != (after.get("rules", []) or []) else [],
    }
