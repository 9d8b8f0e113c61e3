"""The HTTP API (`skewless serve`): features and predictions for keys, over FastAPI.

    GET  /health     {"status": "ok", "online_store": "sqlite", "views": [...], "model": {...} | null}
    POST /features   {"keys": {"lead_id": [1, 2]}, "features": ["lead_profile:industry", ...]
                      | "feature_service": "lead_conversion", "as_of": "2026-05-20T10:00:00"}
                     -> {"results": {"lead_id": [1, 2], "industry": ["software", null], ...}}
    POST /predict    {"keys": {"lead_id": [1, 2]}, "as_of": ...}
                     -> {"results": {"lead_id": [1, 2], "score": [0.31, 0.07]}, "model": {...}}

``keys`` may also be a bare list when the views have one join key. ``features`` and
``feature_service`` are optional (default: every feature); ``as_of`` is optional (default now,
UTC). A caller of ``/predict`` passes keys only: the model bundle's features are looked up here,
by :class:`skewless.serving.FeatureServer`. An unknown feature or service is a 404 naming it; keys
that do not fit are a 422; an unknown key gets nulls.
"""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import Response

from skewless.bundle import ModelBundle
from skewless.serving.server import BadRequest, FeatureServer, UnknownFeature


def _reply(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), default=str), status_code=status,
                    media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _reply({"detail": message}, status)


def _as_of(body: dict) -> datetime | None:
    value = body.get("as_of")
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"as_of {value!r} is not an ISO 8601 timestamp") from None


async def _body(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict) or "keys" not in body:
        raise BadRequest('the request body must be a JSON object with "keys"')
    return body


def create_app(server: FeatureServer, bundle: ModelBundle | None = None) -> FastAPI:
    app = FastAPI(title="skewless", description=__doc__, docs_url=None, redoc_url=None)
    model = None if bundle is None else {"service": bundle.service, "trained_at": bundle.trained_at,
                                         "features": bundle.feature_names}

    @app.get("/health")
    async def health() -> Response:
        return _reply({"status": "ok", "online_store": server.store.config.online_store.type,
                       "views": list(server.spec.feature_views), "model": model})

    @app.post("/features")
    async def features(request: Request) -> Response:
        try:
            body = await _body(request)
            wanted = body.get("feature_service") or body.get("features")
            if wanted is not None and not isinstance(wanted, (str, list)):
                raise BadRequest('"features" must be a list of names, "feature_service" a name')
            return _reply({"results": server.get(body["keys"], wanted, as_of=_as_of(body))})
        except UnknownFeature as exc:
            return _error(404, str(exc))
        except BadRequest as exc:
            return _error(422, str(exc))

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        if bundle is None:
            return _error(404, "no model bundle is loaded (start with `skewless serve --bundle PATH`)")
        try:
            body = await _body(request)
            return _reply({"results": bundle.predict(server, body["keys"], as_of=_as_of(body)), "model": model})
        except UnknownFeature as exc:
            return _error(404, str(exc))
        except BadRequest as exc:
            return _error(422, str(exc))

    return app


def serve(server: FeatureServer, bundle: ModelBundle | None, host: str, port: int) -> None:
    """Run the API with uvicorn (one process; uvloop and httptools when installed)."""
    import uvicorn

    uvicorn.run(create_app(server, bundle), host=host, port=port, access_log=False, log_level="warning")
