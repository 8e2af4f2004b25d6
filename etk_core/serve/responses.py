"""JSON error responses (`{"error": "..."}`), one-line messages for validation errors, the app's handlers."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("etk.serve")

TAGS = ("text", "object")
MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field missing",
    "too_short": "must not be empty; send at least one input",
}


def where(loc: tuple[Any, ...]) -> str:
    """`("inputs", 0, "object", "text")` -> `inputs[0].text` (union tags dropped)."""
    out = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(previous, int) and part in TAGS:
            pass
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out or "body"


def validation_message(errors: list[dict[str, Any]], limit: int = 3) -> str:
    """One line from pydantic errors: `where: what; where: what` (the first `limit`)."""
    parts = []
    for error in errors[:limit]:
        if error["type"] == "model_type" and not error["loc"]:
            parts.append('body: must be a JSON object {"inputs": [...]}')
            continue
        parts.append(f"{where(tuple(error['loc']))}: {MESSAGES.get(error['type'], error['msg'])}")
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    hint = ""
    if any(error["type"] == "extra_forbidden" for error in errors):
        hint = " (known fields: inputs; text and text_pair inside an input object)"
    return "; ".join(parts) + more + hint


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    """A JSONResponse `{"error": message}`."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def send_error(send: Any, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    """Send an error response straight from ASGI middleware."""
    import json

    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(key.lower().encode(), value.encode()) for key, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: Any) -> None:
    """Every error the framework raises (404, 405, validation, unexpected) answers `{"error": ...}`."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def http_error(request: Any, exc: HTTPException) -> Any:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no endpoint at {request.url.path}; see /openapi.json for the API"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"method {request.method} is not allowed on {request.url.path}; use {allowed or 'another'}"
        return error_response(exc.status_code, message, exc.headers)

    async def request_error(request: Any, exc: RequestValidationError) -> Any:
        return error_response(422, validation_message(list(exc.errors())))

    async def unexpected(request: Any, exc: Exception) -> Any:
        logger.exception("unexpected error on %s", request.url.path)
        return error_response(500, f"internal error on {request.url.path} ({type(exc).__name__}); details in "
                                   f"the server log")

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, request_error)
    app.add_exception_handler(Exception, unexpected)
