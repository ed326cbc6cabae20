"""WSGI routes: the Magic Hour API surface, signed download/upload URLs, and the control API.

Order inside an API call mirrors a real gateway: auth, latency, transport faults (429/5xx/
reset before any work), validation, credits, the create itself, then post-create faults.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .config import CREDITS_PER_IMAGE, IMAGE_EXTENSIONS, UPLOAD_EXTENSIONS
from .engine import Engine

JSON = "application/json"


class DropConnection(ConnectionError):
    """Raised to make the server drop the socket without answering (see server.py)."""


def json_response(status: int, body: Any, content_type: str = JSON) -> Response:
    data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    return Response(data, status=status, content_type=content_type)


def message(status: int, text: str) -> Response:
    return json_response(status, {"message": text})


def _missing_path_message(path: str) -> str:
    # Verbatim from the 2024-11-29 changelog (contract §2).
    return (
        f"file path '{path}' does not exist. Please make sure that the value matches the "
        "'items.[].file_path' from the /v1/files/upload-urls API and the files are uploaded by "
        "sending a PUT request to the upload url."
    )


URL_MAP = Map(
    [
        Rule("/v1/image-background-remover", endpoint="create", methods=["POST"]),
        Rule("/v1/image-projects/<project_id>", endpoint="get", methods=["GET"]),
        Rule("/v1/image-projects/<project_id>", endpoint="delete", methods=["DELETE"]),
        Rule("/v1/files/upload-urls", endpoint="upload_urls", methods=["POST"]),
        Rule("/_uploads/<path:file_path>", endpoint="upload_put", methods=["PUT"]),
        Rule("/_downloads/<token>/<filename>", endpoint="download", methods=["GET"]),
        Rule("/_emulator/state", endpoint="control_state", methods=["GET"]),
        Rule("/_emulator/config", endpoint="control_config", methods=["GET", "POST"]),
        Rule("/_emulator/plan", endpoint="control_plan", methods=["GET"]),
        Rule("/_emulator/reset", endpoint="control_reset", methods=["POST"]),
        Rule("/_emulator/health", endpoint="control_health", methods=["GET"]),
    ]
)
_5XX_MESSAGES = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
API_ENDPOINTS = frozenset({"create", "get", "delete", "upload_urls"})


class EmulatorApp:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = URL_MAP.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as exc:
            status = exc.code or 404
            self.engine.state.count_request("unmatched")
            return message(status, "Not Found" if status == 404 else (exc.name or "Error"))
        endpoint = str(endpoint)
        self.engine.state.count_request(endpoint)
        try:
            if endpoint in API_ENDPOINTS:
                response = self._api(endpoint, request, args)
            else:
                response = getattr(self, f"_{endpoint}")(request, **args)
        except DropConnection:
            self.engine.state.count_response(endpoint, "reset")
            raise
        self.engine.state.count_response(endpoint, response.status_code)
        return response

    # --- the API ------------------------------------------------------------------------
    def _api(self, endpoint: str, request: Request, args: Mapping[str, Any]) -> Response:
        cfg, dice = self.engine.config, self.engine.dice
        auth = request.headers.get("Authorization", "")
        if auth not in {f"Bearer {key}" for key in (cfg.api_key, *cfg.extra_api_keys)}:
            return message(401, "Unauthorized")
        delay = cfg.latency_seconds
        if dice.roll("latency_spike", cfg.latency_spike_rate):
            delay += cfg.latency_spike_seconds
        if delay:
            time.sleep(delay)
        if endpoint in cfg.fault_endpoints:
            if dice.roll("429", cfg.rate_429):
                return message(429, "Too Many Requests")
            if dice.roll("5xx", cfg.rate_5xx):
                status = dice.choice("5xx_status", (500, 502, 503))
                return message(status, _5XX_MESSAGES[status])
            if not (endpoint == "create" and cfg.reset_after_create) and dice.roll("reset", cfg.rate_reset):
                request.get_data()  # drain the body so the close below is a clean RST, not a half-read
                raise DropConnection("injected connection reset")
        response: Response = getattr(self, f"_{endpoint}")(request, **args)
        return response

    def _create(self, request: Request) -> Response:
        body = self._json_body(request)
        if isinstance(body, Response):
            return body
        assets = body.get("assets")
        if not isinstance(assets, dict):
            return message(400, "Missing required field: assets (expected object)")
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            return message(400, "Invalid field: name (expected string)")
        clean_assets = self._clean_assets(assets)
        if isinstance(clean_assets, Response):
            return clean_assets
        return self._create_project(request, name, clean_assets)

    def _clean_assets(self, assets: dict[str, Any]) -> dict[str, str] | Response:
        """The create's assets, validated as Magic Hour does (paths or URLs with an image extension)."""
        image = assets.get("image_file_path")
        if not isinstance(image, str) or not image:
            return message(400, "Missing required field: assets.image_file_path (expected string)")
        clean_assets = {"image_file_path": image}
        background = assets.get("background_image_file_path")
        if background is not None:
            if not isinstance(background, str) or not background:
                return message(400, "Invalid field: assets.background_image_file_path (expected string)")
            clean_assets["background_image_file_path"] = background
        for field_name, value in clean_assets.items():
            problem = self._check_path(field_name, value)
            if problem is not None:
                return problem
        return clean_assets

    def _refusal(self) -> Response | None:
        """A create refused before anything is created: the configured error, or no credits left."""
        cfg = self.engine.config
        if cfg.create_error_status is not None:
            return message(cfg.create_error_status, cfg.create_error_message)
        if self.engine.credit_balance() < CREDITS_PER_IMAGE:
            return message(402, "Payment required")
        return None

    def _fault_after_create(self, project_id: str) -> Response | None:
        """Post-create faults: the job exists and is charged, but the client cannot know."""
        engine, cfg, dice = self.engine, self.engine.config, self.engine.dice
        if "create" not in cfg.fault_endpoints:
            return None
        if cfg.reset_after_create and dice.roll("reset", cfg.rate_reset):
            engine.state.set_create_outcome(project_id, "reset_after_create")
            raise DropConnection("injected reset after create")
        if dice.roll("500_after_create", cfg.rate_500_after_create):
            engine.state.set_create_outcome(project_id, "500_after_create")
            return message(500, "Internal Server Error")
        return None

    def _create_project(self, request: Request, name: str | None, clean_assets: dict[str, str]) -> Response:
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        engine, cfg = self.engine, self.engine.config
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        api_key = request.headers["Authorization"].removeprefix("Bearer ")  # checked by _api
        project = engine.create(name, clean_assets, headers, api_key=api_key)
        if project is None:
            # Reject mode, the key's plan is full: refused before anything is created or charged. The
            # body is the documented {"message"} envelope; no Retry-After, as Magic Hour documents none.
            return message(429, "Too Many Requests")
        fault = self._fault_after_create(project.id)
        if fault is not None:
            return fault
        body_out: dict[str, Any] = {
            "id": project.id,
            "credits_charged": project.credits_charged,
            "frame_cost": project.credits_charged,  # deprecated, but the Python SDK requires it
        }
        if cfg.malformed is not None and "create" in cfg.malformed_targets:
            engine.state.set_create_outcome(project.id, "malformed")
            return self._malformed(body_out, cfg.malformed)
        return json_response(200, body_out)

    def _check_path(self, field_name: str, value: str) -> Response | None:
        parsed = urlparse(value)
        if parsed.scheme in ("http", "https") and parsed.netloc:
            ext = PurePosixPath(parsed.path).suffix.lower().lstrip(".")
            if ext not in IMAGE_EXTENSIONS:
                return message(
                    422,
                    f"Invalid assets.{field_name}: the URL must include a supported file extension "
                    f"({', '.join(IMAGE_EXTENSIONS)})",
                )
            return None
        if value.startswith("api-assets/") and self.engine.upload_bytes(value) is not None:
            return None
        return message(400, _missing_path_message(value))

    def _get(self, request: Request, project_id: str) -> Response:
        payload = self.engine.payload(project_id)
        if payload is None:
            return message(404, "Not Found")
        cfg = self.engine.config
        if cfg.malformed is not None and "get" in cfg.malformed_targets:
            return self._malformed(payload, cfg.malformed)
        return json_response(200, payload)

    def _delete(self, request: Request, project_id: str) -> Response:
        if not self.engine.delete(project_id):
            return message(404, "Not Found")
        return json_response(204, None)

    def _upload_urls(self, request: Request) -> Response:
        body = self._json_body(request)
        if isinstance(body, Response):
            return body
        items = body.get("items")
        if not isinstance(items, list) or not items:
            return message(400, "Missing required field: items (expected a non-empty array)")
        specs: list[tuple[str, str]] = []
        for i, item in enumerate(items):
            spec = _upload_spec(i, item)
            if isinstance(spec, Response):
                return spec
            specs.append(spec)
        return json_response(200, {"items": [self.engine.new_upload(t, e) for t, e in specs]})

    def _malformed(self, body: dict[str, Any], mode: str) -> Response:
        if mode == "bad_json":
            text = json.dumps(body)
            return Response(text[: len(text) // 2], status=200, content_type=JSON)  # truncated mid-object
        if mode == "missing_fields":
            keep = {"id"} if "status" not in body else {"id", "name", "type"}
            return json_response(200, {k: v for k, v in body.items() if k in keep})
        if mode == "unknown_status":
            return json_response(200, {**body, "status": "processing"} if "status" in body else body)
        return json_response(200, body, content_type="text/html; charset=utf-8")  # wrong_content_type

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any] | Response:
        raw = request.get_data(cache=True)
        if not raw.strip():
            return message(400, "Missing request body")
        try:
            body = json.loads(raw)
        except ValueError:
            return message(400, "Request body is not valid JSON")
        if not isinstance(body, dict):
            return message(400, "Request body must be a JSON object")
        return body

    # --- storage-like URLs --------------------------------------------------------------
    def _upload_put(self, request: Request, file_path: str) -> Response:
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            # Object stores' signed PUT URLs want the length up front: S3 answers 501 NotImplemented to a
            # Transfer-Encoding header (Amazon S3 API Reference, "PutObject"; "Error responses").
            return Response(b"", status=501)
        status = self.engine.put_upload(
            file_path, request.args.get("expires", ""), request.args.get("auth-value", ""), request.get_data()
        )
        return Response(b"", status=status)

    def _download(self, request: Request, token: str, filename: str) -> Response:
        status, data = self.engine.download(token, request.args.get("expires", ""), request.args.get("auth-token", ""))
        return Response(data, status=status, content_type="image/png" if status == 200 else "application/xml")

    # --- control API (no auth: it only ever listens on loopback) -----------------------
    def _control_state(self, request: Request) -> Response:
        data = self.engine.state.to_dict(self.engine.config.initial_credits)
        data["config"] = self.engine.config.to_dict()
        data["base_url"] = self.engine.public_base()
        data["plan"] = self._plan_body()
        return json_response(200, data)

    def _control_plan(self, request: Request) -> Response:
        """The plan's slots alone: small enough to poll during a flood, unlike the full state."""
        return json_response(200, self._plan_body())

    def _plan_body(self) -> dict[str, Any]:
        cfg = self.engine.config
        return {
            "plan_concurrency": cfg.plan_concurrency,
            "plan_mode": cfg.plan_mode,
            **self.engine.plan_stats().to_dict(),
        }

    def _control_config(self, request: Request) -> Response:
        if request.method == "POST":
            body = self._json_body(request)
            if isinstance(body, Response):
                return body
            try:
                self.engine.configure(**body)
            except (TypeError, ValueError) as exc:
                return message(400, str(exc))
        return json_response(200, self.engine.config.to_dict())

    def _control_reset(self, request: Request) -> Response:
        self.engine.reset()
        return json_response(200, {"reset": True})

    def _control_health(self, request: Request) -> Response:
        return json_response(200, {"ok": True})


def _upload_spec(i: int, item: Any) -> tuple[str, str] | Response:
    """(type, extension) of one requested upload URL, or the error Magic Hour answers for it."""
    if not isinstance(item, dict):
        return message(400, f"Invalid field: items[{i}] (expected object)")
    type_, ext = item.get("type"), item.get("extension")
    if type_ not in UPLOAD_EXTENSIONS:
        return message(400, f"Invalid field: items[{i}].type (expected one of video, audio, image)")
    if not isinstance(ext, str) or not re.fullmatch(r"[a-z0-9]+", ext):
        return message(400, f"Invalid field: items[{i}].extension (expected to match ^[a-z0-9]+$)")
    allowed = UPLOAD_EXTENSIONS[str(type_)]
    if ext not in allowed:
        # Wording copied from the documented audio example (contract §4).
        possible = ", ".join(allowed)
        return message(422, f"'{ext}' is an invalid {type_} extension. Possible extensions are '{possible}'")
    return str(type_), ext
