"""The alarms' checks: someone subscribed to the alarm topic, the DLQs empty, no alarm firing."""

from __future__ import annotations

import shlex
from typing import Any

from cutout_dev.ops.doctor.base import (
    Check,
    DoctorContext,
)
from cutout_dev.ops.status import alarms_firing, queue_depth


class AlarmChecks:
    def __init__(self, ctx: DoctorContext) -> None:
        self.ctx = ctx

    # -- alarms, DLQs ---------------------------------------------------------------------------------------
    def alarm_subscription(self) -> Check:
        topic = self.ctx.target.output("AlarmTopicArn")
        subscriptions: list[dict[str, Any]] = []
        pages = self.ctx.target.client("sns").get_paginator("list_subscriptions_by_topic")
        for page in pages.paginate(TopicArn=topic):
            subscriptions.extend(page.get("Subscriptions", []))
        pending = [s for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"]
        if pending:
            endpoints = ", ".join(f"{s.get('Protocol')} {s.get('Endpoint')}" for s in pending)
            resend = "\n".join(
                f"{self.ctx.aws} sns subscribe --topic-arn {shlex.quote(topic)} "
                f"--protocol {shlex.quote(str(s.get('Protocol')))} "
                f"--notification-endpoint {shlex.quote(str(s.get('Endpoint')))}"
                for s in pending
            )
            return Check(
                "alarm-subscription",
                "fail",
                f'not confirmed: {endpoints} (SNS delivers nothing until the link in the "AWS Notification - '
                'Subscription Confirmation" mail is clicked)',
                f"# click the link in that mail; to have it sent again:\n{resend}",
            )
        if not subscriptions:
            return Check(
                "alarm-subscription",
                "warn",
                "nobody is subscribed to the alarm topic: alarms are seen only by `cutout status`",
                self.ctx.redeploy(AlarmEmail="you@example.com")
                if not self.ctx.target.local
                else f"{self.ctx.aws} sns subscribe --topic-arn {shlex.quote(topic)} --protocol email "
                "--notification-endpoint you@example.com",
            )
        confirmed = ", ".join(f"{s.get('Protocol')} {s.get('Endpoint')}" for s in subscriptions)
        return Check("alarm-subscription", "ok", f"{len(subscriptions)} confirmed: {confirmed}")

    def dlqs(self) -> Check:
        depths = {
            name: queue_depth(self.ctx.target, ref.url) for name, ref in self.ctx.target.dead_letter_queues.items()
        }
        spelled = "  ".join(f"{name} {n}" for name, n in depths.items())
        full = [name for name, n in depths.items() if n]
        if not full:
            return Check("dlqs", "ok", f"empty: {spelled}")
        return Check(
            "dlqs",
            "fail",
            f"{spelled}: messages the pipeline gave up on (look at `{self.ctx.cutout} jobs --status error --since 1d` "
            "and fix the cause first)",
            "\n".join(f"{self.ctx.cutout} redrive {name}" for name in full),
        )

    def alarms(self) -> Check:
        firing = alarms_firing(self.ctx.target)
        if not firing:
            return Check("alarms", "ok", f"none of the stack's alarms ({self.ctx.target.alarm_prefix}*) is in ALARM")
        spelled = "; ".join(f"{a['name']}: {a['reason']}" for a in firing)
        return Check(
            "alarms",
            "fail",
            f"in ALARM: {spelled}",
            "\n".join(
                [f"{self.ctx.cutout} status"]
                + [
                    f"{self.ctx.aws} cloudwatch describe-alarm-history --alarm-name {shlex.quote(a['name'])} "
                    "--history-item-type StateUpdate --max-items 5"
                    for a in firing
                ]
            ),
        )
