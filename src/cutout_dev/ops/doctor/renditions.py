"""The renditions step's checks: the stored presets parse, and its queue is fed by "Cutout Completed" and
dead-letters into its DLQ as every queue of the stack does (the DLQ's depth is the ``dlqs`` check's)."""

from __future__ import annotations

import json
import shlex

from cutout.domain.messages import MAX_RECEIVE_COUNT

from cutout_dev.ops.doctor.base import Check, DoctorContext
from cutout_dev.ops.presets.stored import PresetsParameter
from cutout_dev.ops.status import queue_depth

NO_STEP = "this stack has no renditions step (deployed from a template before it): nothing to check"


class RenditionsChecks:
    def __init__(self, ctx: DoctorContext) -> None:
        self.ctx = ctx

    def presets(self) -> Check:
        target = self.ctx.target
        if "PresetsParameterName" not in target.outputs:
            return Check("presets", "ok", NO_STEP)
        stored = PresetsParameter.of(target).read()
        problems = stored.problems()
        fix = f"{self.ctx.cutout} presets check presets.json && {self.ctx.cutout} presets set presets.json"
        if problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            return Check(
                "presets",
                "fail",
                f"{stored.parameter} (version {stored.version}) does not parse: {shown}. The renditions step "
                "cannot use it: no rendition is made until it is fixed",
                f"{self.ctx.cutout} presets show   # what is stored\n{fix}",
            )
        document = stored.document()
        if document.empty:
            where = "nothing stored" if stored.text is None else "an empty document"
            return Check(
                "presets",
                "ok",
                f"{stored.parameter}: {where}: no renditions, no extra cost (to have some: {fix.split(' && ')[1]})",
            )
        names = ", ".join(document.presets)
        return Check(
            "presets",
            "ok",
            f"{stored.parameter} version {stored.version} parses: {len(document.presets)} preset(s) ({names}), "
            f"{len(document.rules)} rule(s); set {stored.modified}",
        )

    def renditions_queue(self) -> Check:
        target = self.ctx.target
        if "RenditionsQueueUrl" not in target.outputs:
            return Check("renditions-queue", "ok", NO_STEP)
        queue, dlq = target.queue("RenditionsQueue"), target.queue("RenditionsDLQ")
        sqs = target.client("sqs")
        attrs = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn", "RedrivePolicy"])
        attrs = attrs.get("Attributes", {})
        dlq_arn = (
            dlq.arn or sqs.get_queue_attributes(QueueUrl=dlq.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )
        policy = json.loads(attrs.get("RedrivePolicy") or "{}")
        redeploy = self.ctx.redeploy()
        if policy.get("deadLetterTargetArn") != dlq_arn:
            return Check(
                "renditions-queue",
                "fail",
                "RenditionsQueue does not dead-letter into RenditionsDLQ "
                f"({attrs.get('RedrivePolicy') or 'no policy'}): "
                "a render request that keeps failing would be retried without end or lost",
                f"# restore the template's RedrivePolicy: {redeploy}",
            )
        receives = int(policy.get("maxReceiveCount", 0))
        if receives != MAX_RECEIVE_COUNT:
            return Check(
                "renditions-queue",
                "warn",
                f"RenditionsQueue dead-letters after {receives} receives, not the stack's {MAX_RECEIVE_COUNT}",
                f"# restore the template's RedrivePolicy: {redeploy}",
            )
        rules = self._feeding_rules(str(attrs.get("QueueArn") or queue.arn or ""))
        if not rules:
            return Check(
                "renditions-queue",
                "fail",
                'no enabled EventBridge rule sends "Cutout Completed" to RenditionsQueue: no rendition is made',
                f"{self.ctx.aws} events list-rule-names-by-target --target-arn {shlex.quote(str(queue.arn))}\n"
                f"# then enable the rule it names, or: {redeploy}",
            )
        backlog, dead = queue_depth(target, queue.url), queue_depth(target, dlq.url)
        return Check(
            "renditions-queue",
            "ok",
            f"fed by {', '.join(rules)}; dead-letters into RenditionsDLQ after {receives} receives; "
            f"{backlog} request(s) waiting, {dead} in the DLQ",
        )

    def _feeding_rules(self, queue_arn: str) -> list[str]:
        """The enabled rules on the stack's event bus that target the queue."""
        events = self.ctx.target.client("events")
        bus = self.ctx.target.parameters.get("EventBusName") or "default"
        names: list[str] = []
        kwargs = {"TargetArn": queue_arn, "EventBusName": bus}
        while True:
            page = events.list_rule_names_by_target(**kwargs)
            names.extend(page.get("RuleNames", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        return [n for n in names if events.describe_rule(Name=n, EventBusName=bus).get("State") == "ENABLED"]
