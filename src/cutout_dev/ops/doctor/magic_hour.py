"""The Magic Hour checks: the stored key tried without spending credits, and a signed webhook delivery."""

from __future__ import annotations

import hmac
import json
import shlex
import time
from urllib.parse import urlsplit

import requests

from cutout_dev.ops.doctor.base import (
    ACCEPTED,
    HTTP_TIMEOUT_SECONDS,
    PROBE_PROJECT_ID,
    SECRET_CACHE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Check,
    DoctorContext,
    failure_reason,
    probe_project,
    response_message,
)


class MagicHourChecks:
    def __init__(self, ctx: DoctorContext) -> None:
        self.ctx = ctx

    # -- Magic Hour ------------------------------------------------------------------------------------------------
    def magic_hour_key(self) -> Check:
        """The stored key, tried with a call that spends no credits: GET of a project id that does not exist."""
        key = self.ctx.secret_value("ApiKeySecret")
        url = f"{self.ctx.magic_hour_url}/v1/image-projects/{PROBE_PROJECT_ID}"
        fix = self.ctx.put_secret("ApiKeySecret", "$MAGIC_HOUR_API_KEY")
        try:
            resp = self.ctx.http.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=HTTP_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            return Check(
                "magic-hour-key", "fail", f"{self.ctx.magic_hour_url} cannot be reached: {failure_reason(exc)}"
            )
        where = f"GET {self.ctx.magic_hour_url}/v1/image-projects/<no such id>"
        if resp.status_code == 404:
            return Check("magic-hour-key", "ok", f"the stored key is accepted ({where}: 404, no credits spent)")
        if resp.status_code == 401:
            return Check("magic-hour-key", "fail", f"Magic Hour refuses the stored key ({where}: 401)", fix)
        if resp.status_code in (402, 403):
            return Check(
                "magic-hour-key",
                "fail",
                "the key is known but the account cannot create "
                f"({where}: {resp.status_code} {response_message(resp)})",
                "# top up credits or the plan in Magic Hour's dashboard",
            )
        return Check(
            "magic-hour-key",
            "warn",
            f"{where}: {resp.status_code} {response_message(resp)} (try again in a minute)",
            None,
        )

    def _magic_hour_signing_secret(self) -> str | None:
        """What Magic Hour signs with, when the doctor can know it: given by the operator, or (locally) the
        emulator's (its loopback control API says; real Magic Hour has no such call)."""
        if self.ctx.magic_hour_webhook_secret:
            return self.ctx.magic_hour_webhook_secret
        host = urlsplit(self.ctx.magic_hour_url).hostname or ""
        if not self.ctx.target.local or host not in ("127.0.0.1", "localhost", "::1"):
            return None  # real Magic Hour (`cutout local up --real-magic-hour`) has no control API to ask
        try:
            resp = self.ctx.http.get(f"{self.ctx.magic_hour_url}/_emulator/config", timeout=HTTP_TIMEOUT_SECONDS)
            secret = resp.json().get("webhook_secret") if resp.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError):
            return None
        return str(secret) if secret else None

    def webhook(self) -> Check:
        """A signed delivery for a project that is not a Cutout job's: 202 (what Cutout's webhook answers every
        authentic delivery, ignored ones too) proves the URL, its permission and the secret agree. Sent signed with
        Magic Hour's secret when known (so it is what Magic Hour would get)."""
        url = self.ctx.target.output("WebhookUrl")
        stored = self.ctx.secret_value("WebhookSecret")
        theirs = self._magic_hour_signing_secret()
        signer = theirs or stored
        body = json.dumps({"type": "image.completed", "payload": probe_project()}, separators=(",", ":"))
        stamp = str(int(time.time()))
        signature = hmac.new(signer.encode(), f"{stamp}.{body}".encode(), "sha256").hexdigest()
        fix = self.ctx.put_secret("WebhookSecret", "$WEBHOOK_SECRET")
        try:
            resp = self.ctx.http.post(
                url,
                data=body.encode(),
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: stamp},
                timeout=HTTP_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return Check(
                "webhook",
                "fail",
                f"{url} cannot be reached: {failure_reason(exc)}",
                f"{self.ctx.redeploy()}"
                "   # re-creates the Function URL; register the new WebhookUrl output in Magic Hour",
            )
        signed_with = "Magic Hour's signing secret" if theirs else "the stored secret"
        answered = f"a delivery signed with {signed_with} got {resp.status_code}"
        if theirs is not None and not hmac.compare_digest(theirs.encode(), stored.encode()):
            cached = f" (the functions cache it up to {SECRET_CACHE_SECONDS // 60} min)" if resp.ok else ""
            return Check(
                "webhook",
                "fail",
                f"the stored webhook secret is not the one Magic Hour signs with: its deliveries are refused (401) "
                f"once the functions read the stored one{cached}; {answered}",
                fix,
            )
        if resp.status_code == ACCEPTED:
            compared = "" if theirs else " (not compared with Magic Hour's: --webhook-secret-env VAR does)"
            return Check("webhook", "ok", f"{url}: {answered}{compared}")
        if resp.ok:
            # Magic Hour would count it delivered, but Cutout's webhook answers 202 to every signed delivery: this
            # URL fronts something else (a proxy, an older or another function).
            return Check(
                "webhook",
                "fail",
                f"{answered}, not the {ACCEPTED} Cutout's webhook gives a signed delivery: {url} does not reach it",
                f"{self.ctx.redeploy()}   # then register the stack's WebhookUrl output in Magic Hour",
            )
        return self._webhook_refused(url, resp, answered, signed_with, fix)

    def _webhook_refused(self, url: str, resp: requests.Response, answered: str, signed_with: str, fix: str) -> Check:
        """What a signed delivery's refusal (neither 202 nor another 2xx) says about the webhook."""
        if resp.status_code == 401:
            detail = (
                f"{answered}: the function verifies with another secret than {signed_with} (a value put less than "
                f"{SECRET_CACHE_SECONDS // 60} min ago is picked up when its cache expires)"
            )
            return Check("webhook", "fail", detail, fix)
        if resp.status_code == 403:
            # "Control access to Lambda function URLs": AuthType NONE needs lambda:InvokeFunctionUrl (and, since
            # 2025, lambda:InvokeFunction) in the function's resource policy; SAM's FunctionUrlConfig adds both.
            return Check(
                "webhook",
                "fail",
                f"{answered}: the Function URL's resource policy does not let the public invoke it",
                f"{self.ctx.redeploy()}   # restores the permissions SAM's FunctionUrlConfig adds",
            )
        if resp.status_code == 429:
            return Check(
                "webhook",
                "warn",
                f"{answered}: the webhook's reserved concurrency is exhausted right now (Magic Hour retries)",
            )
        logs = self.ctx.target.log_groups.get("Webhook", f"/aws/lambda/{self.ctx.target.stack_name}/webhook")
        return Check(
            "webhook",
            "fail",
            f"{answered} {response_message(resp)}",
            f"{self.ctx.aws} logs tail {shlex.quote(logs)} --since 15m",
        )
