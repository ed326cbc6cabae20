"""The Lambda concurrency check: the account's quota against the template's reservations."""

from __future__ import annotations

from typing import Any

from cutout_dev.ops.doctor.base import (
    CONCURRENCY_QUOTA_CODE,
    LOCAL_DEFAULT_QUOTA,
    RESERVATION_PARAMETER,
    UNRESERVED_MINIMUM,
    Check,
    DoctorContext,
)
from cutout_dev.ops.target import FUNCTIONS


class ConcurrencyChecks:
    def __init__(self, ctx: DoctorContext) -> None:
        self.ctx = ctx

    # -- Lambda concurrency ----------------------------------------------------------------------------------------
    def concurrency(self) -> Check:
        """The account's concurrency quota against what the stack reserves, as AWS will judge the next deploy."""
        if self.ctx.target.local:
            quota = int(self.ctx.local_state.get("account_concurrency_quota") or LOCAL_DEFAULT_QUOTA)
            reserved = self._template_reservations()
            unreserved = quota - sum(reserved.values())
            where = "reservations from the template, quota from the local stack"
        else:
            lam = self.ctx.target.client("lambda")
            limits = lam.get_account_settings()["AccountLimit"]
            quota = int(limits["ConcurrentExecutions"])
            unreserved = int(limits["UnreservedConcurrentExecutions"])
            reserved = {}
            for fn in FUNCTIONS:
                name = self.ctx.target.outputs.get(f"{fn}FunctionName")
                if name:
                    answer = lam.get_function_concurrency(FunctionName=name)
                    if answer.get("ReservedConcurrentExecutions") is not None:
                        reserved[fn] = int(answer["ReservedConcurrentExecutions"])
            where = "Lambda GetAccountSettings, GetFunctionConcurrency"
        minimum = min(quota, UNRESERVED_MINIMUM)
        ours = sum(reserved.values())
        others = max(0, quota - unreserved - ours)  # reserved by the account's other functions
        allowed = quota - others - minimum  # most this stack may reserve in all
        spelled = ", ".join(f"{fn} {n}" for fn, n in reserved.items()) or "none"
        detail = (
            f"quota {quota}, unreserved {unreserved} (AWS keeps {minimum}); this stack reserves {ours} ({spelled}), "
            f"other functions {others} ({where})"
        )
        if ours > allowed:
            fix = self.ctx.redeploy(**{RESERVATION_PARAMETER: "0"})
            if not self.ctx.target.local:
                fix += (
                    f"\n# or raise the quota: {self.ctx.aws} service-quotas request-service-quota-increase "
                    f"--service-code lambda --quota-code {CONCURRENCY_QUOTA_CODE} --desired-value 1000"
                )
            return Check(
                "concurrency",
                "fail",
                f"{detail}: at most {max(0, allowed)} can be reserved, so deploys and updates are refused "
                '("decreases account\'s UnreservedConcurrentExecution below its minimum value")',
                fix,
            )
        return Check("concurrency", "ok", detail)

    def _template_reservations(self) -> dict[str, int]:
        """Reserved concurrency per function, as the stack's template and parameters set it (the local stack has
        no Lambda service to ask)."""
        from pathlib import Path

        from cutout_dev.local_stack.cfn_yaml import load_template
        from cutout_dev.local_stack.intrinsics import NO_VALUE, IntrinsicResolver, UnresolvableError
        from cutout_dev.local_stack.stack import PROJECT_ROOT

        template = load_template(Path(self.ctx.local_state.get("template") or PROJECT_ROOT / "template.yaml"))

        def no_resource(*args: str) -> Any:
            raise UnresolvableError(f"a reservation that depends on a resource ({args}) is not modelled")

        resolver = IntrinsicResolver(
            template,
            self.ctx.target.parameters,
            region=self.ctx.target.region,
            stack_name=self.ctx.target.stack_name,
            ref=no_resource,
            get_att=no_resource,
        )
        default = ((template.get("Globals") or {}).get("Function") or {}).get("ReservedConcurrentExecutions")
        reserved: dict[str, int] = {}
        for logical_id, res in (template.get("Resources") or {}).items():
            if res.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                continue
            if res.get("Condition") and not resolver.condition(str(res["Condition"])):
                continue
            value = resolver.resolve((res.get("Properties") or {}).get("ReservedConcurrentExecutions", default))
            if value is None or value is NO_VALUE:
                continue
            reserved[str(logical_id).removesuffix("Function")] = int(value)
        return reserved
