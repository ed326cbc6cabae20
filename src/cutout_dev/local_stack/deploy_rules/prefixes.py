"""Cutout's own refusal, beside AWS's: the renditions prefix nested in (or around) another prefix of the stack.

CloudFormation's Rules can only compare whole values, so the template's own Rules catch equal prefixes and nothing
nested ("renditions under cutouts/", "cutouts/renditions/"). The renditions function refuses such a configuration
at every cold start (`prefix_clash`, InvalidEnvironment: its messages wait in the DLQ until it is fixed); the
deploy refuses it first, on the same rule, with the same words.
"""

from __future__ import annotations

from collections.abc import Iterator

from cutout.domain.models import prefix_clash

from cutout_dev.local_stack.deploy_rules.model import FUNCTION, Account, ResolvedTemplate, Violation

_SOURCE = "Cutout's design (docs/design.md, RENDITIONS_PREFIX): the renditions function refuses it at cold start"


def renditions_prefix(t: ResolvedTemplate, account: Account) -> Iterator[Violation]:
    for logical_id, res in t.of_type(FUNCTION).items():
        env = ((res["Properties"].get("Environment") or {}).get("Variables")) or {}
        if "RENDITIONS_PREFIX" not in env or "PRESETS_PARAMETER" not in env:
            continue  # the function that writes renditions (the submit only skips them)
        problem = prefix_clash(
            str(env["RENDITIONS_PREFIX"]),
            str(env.get("INPUT_PREFIX", "")),
            str(env.get("OUTPUT_PREFIX", "")),
            str(env.get("BACKGROUND_PREFIX", "")),
            output_elsewhere=bool(env.get("OUTPUT_BUCKET")) and env.get("OUTPUT_BUCKET") != env.get("SOURCE_BUCKET"),
        )
        if problem:
            yield Violation("cutout.renditions-prefix", logical_id, problem, _SOURCE)
