"""The HTTP API (`skewless serve`): features and predictions for keys, over FastAPI.

    GET  /health     liveness: {"status": "ok", ...} as long as the process answers
    GET  /ready      readiness: 200 {"status": "ready", "checks": {...}} when the online store,
                     the event store and every ``FeatureServer.extra_checks`` answer, else 503
                     naming each failing check
    POST /features   {"keys": {"lead_id": [1, 2]}, "features": ["lead_profile:industry", ...]
                      | "feature_service": "lead_conversion", "as_of": "2026-05-20T10:00:00"}
                     -> {"results": {"lead_id": [1, 2], "industry": ["software", null], ...}}
    POST /predict    {"keys": {"lead_id": [1, 2]}, "as_of": ...}
                     -> {"results": {"lead_id": [1, 2], "score": [0.31, null],
                                     "missing": [[], ["industry", ...]]}, "model": {...}}

``keys`` may also be a bare list when the views have one join key; each key must be of its join
key's exact JSON type (:mod:`skewless.serving.request_keys`). ``features`` and
``feature_service`` are optional (default: every feature); ``as_of`` is optional (default now,
UTC). ``/predict`` lists per key the features its views have no row for, and gives no score
(null) to a key no view knows.

Statuses: 401 without the bearer token when ``$SKEWLESS_API_TOKEN`` is set; 404 an unknown
feature or service (the project's feature names are listed only to authenticated callers);
413 a body over 1 MiB or more than 10,000 keys; 422 anything else malformed (not UTF-8 JSON,
nested deeper than 8, wrong types, an ``as_of`` the online store cannot answer exactly); 503 a
store that does not answer in time, with the reason. No input is a 500.

Blocking work (store reads, fresh SQL, scoring) runs on two bounded thread pools, one for
requests that only read the online store and one for requests that run fresh SQL, so neither
kind stalls the other, and the event loop (``/health``) is never blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, AsyncIterator, Callable, Optional

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from skewless.bundle import ModelBundle
from skewless.serving.request_keys import TooManyKeys
from skewless.serving.server import BadRequest, FeatureServer, StoreUnavailable, UnknownFeature

TOKEN_ENV = "SKEWLESS_API_TOKEN"
MAX_BODY = 1 << 20  # bytes
MAX_DEPTH = 8  # JSON nesting
STORED_WORKERS = 8
# fresh SQL is CPU work: at most this many queries at once leaves cores to stored reads
FRESH_WORKERS = int(os.environ.get("SKEWLESS_FRESH_WORKERS", "2"))
READY_TIMEOUT = 2.0  # seconds for all readiness checks together

log = logging.getLogger("skewless.serve")


class ServeRefused(RuntimeError):
    """`skewless serve` would be unsafe as configured (the message says why and the fix)."""


KEYS_SCHEMA = {
    "anyOf": [
        {"type": "array", "items": {}},
        {"type": "object", "additionalProperties": {"type": "array", "items": {}}},
    ]
}
"""The documented shape of ``keys``; validated by :mod:`skewless.serving.request_keys` against
each join key's type (a model field typed this way would refuse with less precise messages)."""
KEYS_DOC = (
    "The keys asked for: an object of lists, one per join key (zipped for composite keys), "
    "or a bare list when the views have one join key. Each key must be of its join key's "
    "exact JSON type: a string for an integer key is refused (422 naming the key), never "
    "coerced. At most 10,000 keys."
)
AS_OF_DOC = "The instant (ISO 8601; default now, UTC)."


class PredictRequest(BaseModel):
    """The body of ``POST /predict``: the bundle's features are looked up for these keys."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"keys": {"lead_id": [1, 2]}}]}
    )
    keys: Any = Field(description=KEYS_DOC, json_schema_extra=KEYS_SCHEMA)
    as_of: Optional[StrictStr] = Field(None, description=AS_OF_DOC)


class FeaturesRequest(PredictRequest):
    """The body of ``POST /features``: the keys and instant of ``/predict`` and which features.
    Parsed by :func:`parse_body` (size, depth and exact key types are checked by the handler,
    not by this model's schema alone)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "keys": {"lead_id": [1, 2]},
                    "features": ["lead_profile:industry"],
                    "as_of": "2026-05-20T10:00:00Z",
                }
            ]
        },
    )
    features: Optional[list[StrictStr]] = Field(
        None, description='Feature references "<view>:<feature>" (default: every feature).'
    )
    feature_service: Optional[StrictStr] = Field(
        None, description="A feature service: its features (instead of ``features``)."
    )


class FeaturesResponse(BaseModel):
    """Columns: each join key and each feature asked for, one value per requested key in the
    order asked (null: no value at ``as_of``)."""

    results: dict[str, list[Any]]


class PredictResults(BaseModel):
    """The keys' columns, ``score`` (probability of the positive class; null for a key no view
    knows) and ``missing`` (per key, the features with no value at ``as_of``)."""

    model_config = ConfigDict(extra="allow")
    score: list[Optional[float]]
    missing: list[list[str]]


class ModelInfo(BaseModel):
    service: str
    trained_at: str
    features: list[str]


class PredictResponse(BaseModel):
    results: PredictResults
    model: ModelInfo


class HealthResponse(BaseModel):
    """Liveness; ``views`` and ``model`` only when no token is set or the caller gave it."""

    status: str
    online_store: str
    views: Optional[list[str]] = None
    model: Optional[dict[str, Any]] = None


class ReadyResponse(BaseModel):
    """``checks``: each readiness check, ``ok`` or the reason it failed."""

    status: str
    checks: dict[str, str]


class ErrorResponse(BaseModel):
    """What went wrong, naming the key, feature, view or limit."""

    detail: str


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    words = {
        401: "missing or wrong bearer token",
        404: "an unknown feature, view or service (or no model loaded)",
        413: "a body over 1 MiB or more than 10,000 keys",
        422: "a malformed body, a key not of its join key's type, or an as_of refused",
        503: "a store did not answer in time, or a view was never materialized",
    }
    return {s: {"model": ErrorResponse, "description": words[s]} for s in statuses}


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a handler that reads its body itself (so validation
    stays the handler's: exact key types, size and depth limits, errors naming the key)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


class _Status(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _reply(body: dict, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        media_type="application/json",
    )


def _error(status: int, message: str) -> Response:
    return _reply({"detail": message}, status)


def parse_as_of(value: str | None) -> datetime | None:
    """An ISO 8601 instant (``Z`` or an offset allowed), else :class:`BadRequest`."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"as_of {value[:80]!r} is not an ISO 8601 timestamp") from None


def _too_deep(value: object, limit: int) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` levels."""
    level = [value]
    for _ in range(limit + 1):
        level = [
            c
            for v in level
            if isinstance(v, (list, dict))
            for c in (v.values() if isinstance(v, dict) else v)
        ]
        if not any(isinstance(v, (list, dict)) for v in level):
            return False
    return True


def parse_body(raw: bytes, model: type[BaseModel] = FeaturesRequest) -> Any:
    """A request body as ``model``: UTF-8 JSON, an object with ``keys``, nested at most
    :data:`MAX_DEPTH` levels; else :class:`BadRequest` saying what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the request body is not UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(text or "{}")
    except RecursionError:
        raise BadRequest(f"the request body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"the request body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict) or "keys" not in body:
        raise BadRequest('the request body must be a JSON object with "keys"')
    if _too_deep(body, MAX_DEPTH):
        raise BadRequest(f"the request body nests deeper than {MAX_DEPTH} levels")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f'"{where}": {first["msg"]}') from None


async def _read(request: Request) -> bytes:
    """The body, refusing more than :data:`MAX_BODY` bytes (413) before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _Status(413, f"the request body is {declared} bytes; at most {MAX_BODY}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _Status(413, f"the request body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(
    server: FeatureServer, bundle: ModelBundle | None = None, token: str | None = None
) -> FastAPI:
    """The API over ``server`` (and ``bundle`` for /predict). ``token`` (default
    ``$SKEWLESS_API_TOKEN``): the bearer token /features and /predict require, when set."""
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    stored = ThreadPoolExecutor(STORED_WORKERS, thread_name_prefix="skewless-stored")
    # fresh SQL yields the CPU to stored reads inside the event store (StoredActivity)
    fresh = ThreadPoolExecutor(FRESH_WORKERS, thread_name_prefix="skewless-fresh")

    def stop() -> None:
        stored.shutdown(wait=False, cancel_futures=True)
        fresh.shutdown(wait=False, cancel_futures=True)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        stop()

    app = FastAPI(
        title="skewless",
        description=__doc__,
        version=_version(),
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.stop = stop  # for a server that swaps apps without a lifespan (skewless dev)
    model = (
        None
        if bundle is None
        else {
            "service": bundle.service,
            "trained_at": bundle.trained_at,
            "features": bundle.feature_names,
        }
    )

    def authenticated(request: Request) -> bool:
        if token is None:
            return False
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.encode()
        )

    def pool(features: object) -> ThreadPoolExecutor:
        try:
            views = server._plan(features).views
        except (BadRequest, UnknownFeature):
            return stored  # answered at once with the error
        return fresh if any(v.fresh for v, _ in views) else stored

    async def answer(
        request: Request,
        work: Callable[[Any], dict],
        features: Callable[[Any], object],
        body_model: type[BaseModel] = FeaturesRequest,
    ) -> Response:
        known = authenticated(request)
        if token is not None and not known:
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
        try:
            body = parse_body(await _read(request), body_model)
            loop = asyncio.get_running_loop()
            return _reply(await loop.run_in_executor(pool(features(body)), work, body))
        except _Status as exc:
            return _error(exc.status, str(exc))
        except UnknownFeature as exc:
            return _error(404, str(exc) if known else exc.message)
        except TooManyKeys as exc:
            return _error(413, str(exc))
        except BadRequest as exc:
            return _error(422, str(exc))
        except StoreUnavailable as exc:
            return _error(503, str(exc))
        except Exception:  # noqa: BLE001 - a defect: logged, and the client told so
            log.exception("unexpected error answering %s", request.url.path)
            return _error(500, "internal error (logged by the server)")

    @app.get("/health", response_model=HealthResponse, summary="Liveness")
    async def health(request: Request) -> Response:
        body: dict = {"status": "ok", "online_store": server.store.config.online_store.type}
        if token is None or authenticated(request):
            body.update(
                views=list(server.spec.feature_views),
                model=model
                if token is not None
                else model and {k: v for k, v in model.items() if k != "features"},
            )
        return _reply(body)

    @app.get(
        "/ready",
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse, "description": "a check failed"}},
        summary="Readiness: the stores answer and hold what the registry says",
    )
    async def ready(request: Request) -> Response:
        loop = asyncio.get_running_loop()
        try:
            checks = await asyncio.wait_for(
                loop.run_in_executor(stored, run_checks, server), READY_TIMEOUT
            )
        except asyncio.TimeoutError:
            checks = {"stores": f"the readiness checks took over {READY_TIMEOUT} s"}
        ok = all(v is None for v in checks.values())
        return _reply(
            {
                "status": "ready" if ok else "unavailable",
                "checks": {k: v or "ok" for k, v in checks.items()},
            },
            200 if ok else 503,
        )

    def wanted_features(body: FeaturesRequest) -> object:
        return body.feature_service if body.feature_service is not None else body.features

    def features_work(body: FeaturesRequest) -> dict:
        wanted = wanted_features(body)
        return {"results": server.get(body.keys, wanted, as_of=parse_as_of(body.as_of))}

    @app.post(
        "/features",
        response_model=FeaturesResponse,
        responses=_errors(401, 404, 413, 422, 503),
        openapi_extra=_body_schema(FeaturesRequest),
        summary="Features for keys at an instant",
    )
    async def features(request: Request) -> Response:
        return await answer(request, features_work, wanted_features)

    def predict_work(body: FeaturesRequest) -> dict:
        assert bundle is not None
        results = bundle.predict(server, body.keys, as_of=parse_as_of(body.as_of))
        return {"results": results, "model": model}

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=_errors(401, 404, 413, 422, 503),
        openapi_extra=_body_schema(PredictRequest),
        summary="Scores of the loaded model for keys, from the features served here",
    )
    async def predict(request: Request) -> Response:
        if bundle is None:
            return _error(
                404, "no model bundle is loaded (start with `skewless serve --bundle PATH`)"
            )
        refs = [f"{v}:{f}" for v, f, _ in bundle.features]
        # parsed as before (FeaturesRequest: a bad "features" is a 422 here too), documented
        # as PredictRequest
        return await answer(request, predict_work, lambda body: refs)

    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("skewless")
    except PackageNotFoundError:
        return "0"


def run_checks(server: FeatureServer) -> dict[str, str | None]:
    """The server's store checks and its ``extra_checks`` ({name: None, or the reason})."""
    out = server.checks()
    for name, check in server.extra_checks:
        try:
            out[name] = check()
        except Exception as exc:  # noqa: BLE001 - a failing check is a reason, not a crash
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


def serve(
    server: FeatureServer,
    bundle: ModelBundle | None,
    host: str,
    port: int,
    access_log: bool = False,
) -> None:
    """Run the API with uvicorn (one process; uvloop and httptools when installed). A bind
    beyond this machine requires ``$SKEWLESS_API_TOKEN``."""
    import uvicorn

    if not is_loopback(host) and not os.environ.get(TOKEN_ENV):
        raise ServeRefused(
            f"refusing to serve on {host} without authentication: set "
            f"{TOKEN_ENV} (clients then send 'Authorization: Bearer <token>'), "
            "or bind 127.0.0.1"
        )
    print(startup_line(server, bundle, host, port), flush=True)
    uvicorn.run(
        create_app(server, bundle),
        host=host,
        port=port,
        access_log=access_log,
        log_level="info" if access_log else "warning",
    )


def startup_line(server: FeatureServer, bundle: ModelBundle | None, host: str, port: int) -> str:
    """What `skewless serve` says once, on start: where, which stores, which views, which model."""
    stored = [v.name for v in server.spec.feature_views.values() if not v.fresh]
    fresh = [v.name for v in server.fresh]
    model = f"model {bundle.service} (trained {bundle.trained_at})" if bundle else "no model"
    return (
        f"skewless serve on http://{host}:{port}: "
        f"online store {server.store.config.online_store.type} for "
        f"{', '.join(stored) or 'no views'}; "
        f"fresh SQL for {', '.join(fresh) or 'no views'}; {model}"
    )
