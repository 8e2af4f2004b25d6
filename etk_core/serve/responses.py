"""JSON error responses (`{"error": "..."}`) and one-line messages for validation errors."""

from __future__ import annotations

from typing import Any

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
