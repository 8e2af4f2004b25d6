"""The FastAPI app around one `Predictor`: /v1/predict, /v1/model, /healthz, /readyz, /metrics (and /docs,
/redoc with `--docs`).

FastAPI is imported at module level here (endpoint annotations are resolved from this module's globals);
only `etk serve` imports this module.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from etk_core.serve.schemas import ErrorBody
from etk_core.serve.settings import ServeSettings, host_allow_list, resolve_threads

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Body is not UTF-8 JSON, nests too deep, has NaN or duplicate keys."},
    401: {"model": ErrorBody, "description": "Missing or wrong API key (when the server has one)."},
    408: {"model": ErrorBody, "description": "Body not received within --read-timeout."},
    413: {"model": ErrorBody, "description": "Body over --max-body-bytes."},
    415: {"model": ErrorBody, "description": "Content-Type is not application/json."},
    421: {"model": ErrorBody, "description": "Host header not in --allowed-hosts."},
    422: {"model": ErrorBody, "description": "Wrong fields or types, empty inputs, over --max-inputs or "
                                             "--max-text-chars, a text that is not valid Unicode."},
    503: {"model": ErrorBody, "description": "Queue full or shutting down: retry after `Retry-After` seconds."},
    500: {"model": ErrorBody, "description": "Unexpected server or inference error (details in the log)."},
}
#: Swagger UI and ReDoc versions `--docs` loads (pinned: a floating CDN tag could change what runs).
SWAGGER_UI_VERSION = "5.17.14"
REDOC_VERSION = "2.1.5"
CDN = "https://cdn.jsdelivr.net/npm"


def load_predictor(settings: ServeSettings) -> Any:
    """The Predictor for `settings`, with intra-op threads set for ONNX Runtime or PyTorch."""
    from etk_core.predict import Predictor

    threads = resolve_threads(settings.threads, settings.workers)
    predictor = Predictor(settings.artifact, batch_size=settings.max_batch, backend=settings.backend,
                          threads=threads)
    if predictor.backend == "torch":
        import torch

        torch.set_num_threads(threads)
    return predictor


def model_info(predictor: Any) -> dict[str, Any]:
    """What /v1/model answers."""
    from etk_core import __version__

    meta = predictor.meta
    folder = Path(predictor.artifact.path)
    return {"name": folder.parent.name if folder.name == "model" else folder.name,
            "model": str(meta.get("model", {}).get("name", meta.get("backbone", "?"))),
            "app": str(meta.get("app", {}).get("name", "?")), "algo": meta.get("algo"),
            "labels": (meta.get("app_state") or {}).get("labels"), "backend": predictor.backend,
            "max_length": meta.get("max_length"), "version": __version__,
            "metrics": {key: float(value) for key, value in (meta.get("metrics") or {}).items()
                        if isinstance(value, int | float) and not isinstance(value, bool)}}


def _rows(values: Any) -> Any:
    """A slice of one output as `batched_outputs` would give it alone: ragged rows stacked when they agree."""
    import numpy as np

    if getattr(values, "dtype", None) is np.dtype(object) and len(values) and all(
            np.shape(row) == np.shape(values[0]) for row in values):
        return np.stack(list(values))
    return values


def make_infer(predictor: Any) -> Any:
    """The batcher's `infer`: one `Predictor.outputs` run over every request, post-processed per request
    (an app's features may refer to their own request's records through `owner`)."""

    def infer(parts: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> list[list[dict[str, Any]]]:
        outputs = predictor.outputs([feature for features, _ in parts for feature in features])
        results, offset = [], 0
        for features, records in parts:
            end = offset + len(features)
            own = {key: _rows(value[offset:end]) for key, value in outputs.items()}
            results.append(predictor.app.postprocess(own, records, features))
            offset = end
        return results

    return infer


def _request_schema(app: Any) -> None:
    """Document /v1/predict's body (parsed by hand, for our own error messages) in the OpenAPI description."""
    from fastapi.openapi.utils import get_openapi

    from etk_core.serve.schemas import PredictRequest

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            request = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(request.pop("$defs", {}))
            components["PredictRequest"] = request
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _docs_routes(app: Any) -> None:
    """/docs and /redoc from pinned CDN versions (`--docs`)."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    async def swagger() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs",
                                   swagger_js_url=f"{CDN}/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{CDN}/swagger-ui-dist@{SWAGGER_UI_VERSION}/swagger-ui.css")

    async def redoc() -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{CDN}/redoc@{REDOC_VERSION}/bundles/redoc.standalone.js")

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)


async def _client_left(receive: Any) -> None:
    """Returns when the client disconnects (the body is read already; the next message is the disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def create_app(settings: ServeSettings, predictor: Any = None) -> FastAPI:
    """The ASGI app. Without `predictor` the model is loaded at startup (in each worker process)."""
    from pydantic import ValidationError

    from etk_core import __version__
    from etk_core.errors import EtkError
    from etk_core.serve import schemas
    from etk_core.serve.batcher import Batcher, InferenceError, QueueFull, ShuttingDown
    from etk_core.serve.metrics import Metrics
    from etk_core.serve.middleware import (
        CLIENT_GONE,
        ApiKeyMiddleware,
        BodyMiddleware,
        HostMiddleware,
        MetricsMiddleware,
    )
    from etk_core.serve.responses import error_response, install_error_handlers, validation_message

    metrics = Metrics()
    state: dict[str, Any] = {"predictor": predictor, "batcher": None}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202 - FastAPI's lifespan protocol
        if state["predictor"] is None:
            state["predictor"] = await asyncio.to_thread(load_predictor, settings)
        batcher = Batcher(make_infer(state["predictor"]), settings.max_batch, settings.queue_size,
                          settings.batch_window_ms, metrics)
        batcher.start()
        state["batcher"] = batcher
        try:
            yield
        finally:
            await batcher.stop(settings.graceful_timeout)
            metrics.process_exited()

    app = FastAPI(title="etk serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Predictions of one etk model artifact. Errors are `{\"error\": \"...\"}`.")

    install_error_handlers(app)
    if settings.docs:
        _docs_routes(app)

    @app.post("/v1/predict", response_model=schemas.PredictResponse, responses=ERROR_RESPONSES,
              summary="Predict for a list of texts", openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}}}})
    async def predict(request: Request) -> Response:
        """One prediction per input, in order; exactly what `etk predict` gives for the same texts."""
        try:
            data = schemas.parse_json(await request.body())  # read in full by BodyMiddleware
        except schemas.BodyError as exc:
            return error_response(400, str(exc))
        try:
            parsed = schemas.PredictRequest.model_validate(data)
        except ValidationError as exc:
            return error_response(422, validation_message(exc.errors()))
        problem = schemas.limit_error(parsed, settings.max_inputs, settings.max_text_chars)
        if problem:
            return error_response(422, problem)
        batcher: Batcher = state["batcher"]
        if batcher.full:  # answer before spending time on tokenising
            return error_response(503, f"server busy: {batcher.depth} requests queued; retry in a second",
                                  {"Retry-After": "1"})
        records = schemas.records(parsed)
        app_ = state["predictor"].app
        left = asyncio.create_task(_client_left(request.receive))
        future: asyncio.Future | None = None
        try:
            # tokenising in a thread keeps the event loop (and /healthz) answering under load
            features = await asyncio.to_thread(app_.encode_all, records, with_label=False)
            if left.done():
                return Response(status_code=CLIENT_GONE)  # nobody to answer: do not compute it
            future = batcher.submit(features, records)
            await asyncio.wait({future, left}, return_when=asyncio.FIRST_COMPLETED)
            if not future.done():
                future.cancel()  # the batcher skips cancelled requests
                return Response(status_code=CLIENT_GONE)
            predictions = future.result()
        except EtkError as exc:
            return error_response(422, str(exc))
        except (QueueFull, ShuttingDown) as exc:
            return error_response(503, str(exc), {"Retry-After": "1"})
        except InferenceError as exc:
            return error_response(500, str(exc))
        except asyncio.CancelledError:  # the graceful shutdown timed out with this request still waiting
            asyncio.current_task().uncancel()
            if future is not None:
                future.cancel()
            return error_response(503, "server shutting down before this request ran; retry on another "
                                       "instance or in a few seconds", {"Retry-After": "5", "Connection": "close"})
        finally:
            left.cancel()
        return JSONResponse({"predictions": predictions})

    @app.get("/v1/model", response_model=schemas.ModelInfo, summary="What is being served")
    async def model() -> Response:
        return JSONResponse(model_info(state["predictor"]))

    @app.get("/healthz", response_model=schemas.Status, summary="Liveness: the process answers")
    async def healthz() -> Response:
        return JSONResponse({"status": "alive"})

    @app.get("/readyz", response_model=schemas.Status, responses={503: {"description": "Not ready or queue full"}},
             summary="Readiness: model loaded and queue not full")
    async def readyz() -> Response:
        batcher = state["batcher"]
        if batcher is None or not batcher.running:
            return JSONResponse({"status": "loading"}, status_code=503)
        if batcher.full:
            return JSONResponse({"status": "busy", "queue_depth": batcher.depth}, status_code=503,
                                headers={"Retry-After": "1"})
        return JSONResponse({"status": "ready", "queue_depth": batcher.depth})

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        content, media_type = metrics.render()
        return Response(content, media_type=media_type)

    _request_schema(app)
    # added innermost first: metrics -> Host allow-list -> API key -> body -> the app
    app.add_middleware(BodyMiddleware, max_bytes=settings.max_body_bytes, read_timeout=settings.read_timeout)
    if settings.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key)
    allowed = host_allow_list(settings)
    if allowed is not None:
        app.add_middleware(HostMiddleware, allowed=allowed)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.etk = state
    app.state.metrics = metrics
    return app


def app_from_env() -> FastAPI:
    """App factory for `--workers N` (uvicorn imports it by name in each worker); the worker stops when its
    supervisor dies."""
    import os

    from etk_core.serve.server import exit_with_parent
    from etk_core.serve.settings import PARENT_ENV

    settings = ServeSettings.from_env()
    if os.environ.get(PARENT_ENV, "").isdigit():
        exit_with_parent(int(os.environ[PARENT_ENV]), settings.graceful_timeout)
    return create_app(settings)
