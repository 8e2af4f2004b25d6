"""Pure ASGI middleware: request metrics, Host allow-list, API-key check, and the request body (JSON content
type, size limit, read timeout) read in full before the app sees it."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

from etk_core.serve.responses import send_error

#: Paths that answer without an API key (load balancers and orchestrators probe them).
OPEN_PATHS = ("/healthz", "/readyz")
#: Status counted for a request whose client left before it was answered (nginx's convention).
CLIENT_GONE = 499
#: Methods whose body is read (and must be JSON).
BODY_METHODS = ("POST", "PUT", "PATCH")
#: Most bytes of an oversized body read and thrown away after its 413, so the client can finish sending and
#: read the answer instead of a connection reset; beyond it the connection is closed at once.
DRAIN_LIMIT = 64 * 1024 * 1024


class MetricsMiddleware:
    """Counts every HTTP request by path, method and status, and observes its latency."""

    def __init__(self, app: Any, metrics: Any) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = CLIENT_GONE  # the app returns without answering only when the client has left

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        except BaseException:
            if status == CLIENT_GONE:
                status = 500
            raise
        finally:
            self.metrics.in_flight.dec()
            self.metrics.observe_request(scope["path"], scope["method"], status, time.perf_counter() - started)


def header(scope: dict, name: bytes) -> bytes | None:
    """The first value of header `name` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def host_name(value: bytes) -> str:
    """`Host` header value -> host name without port: `127.0.0.1:8000` -> `127.0.0.1`, `[::1]:80` -> `::1`."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class HostMiddleware:
    """Answers 421 to a request whose `Host` is not in the allow-list (DNS rebinding: a web page that points
    its own name at 127.0.0.1 sends its name, not ours). A request without Host is not a browser's: let through."""

    def __init__(self, app: Any, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        value = header(scope, b"host") if scope["type"] == "http" else None
        if value is None or host_name(value) in self.allowed:
            await self.app(scope, receive, send)
            return
        shown = value.decode("latin-1")[:100]
        await send_error(send, 421, f"host {shown!r} is not served here; allowed: {', '.join(sorted(self.allowed))} "
                                    f"(--allowed-hosts)", {"Connection": "close"})


class ApiKeyMiddleware:
    """Requires `Authorization: Bearer KEY` or `X-API-Key: KEY` (constant-time compare) except on OPEN_PATHS."""

    def __init__(self, app: Any, api_key: str) -> None:
        self.app = app
        self.key = api_key.encode()

    def _authorised(self, headers: list[tuple[bytes, bytes]]) -> bool:
        given = b""
        for name, value in headers:
            if name == b"x-api-key":
                given = value.strip()
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
            if given:
                break
        return bool(given) and hmac.compare_digest(given, self.key)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._authorised(scope["headers"]):
            await self.app(scope, receive, send)
            return
        await send_error(send, 401, "missing or wrong API key; send `Authorization: Bearer KEY` or `X-API-Key: KEY`",
                         {"WWW-Authenticate": "Bearer"})


def is_json(content_type: bytes | None) -> bool:
    """`application/json` or a `+json` type, parameters (charset) allowed."""
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class BodyMiddleware:
    """Reads the whole body of a POST before the app runs, so that no handler waits on a slow client:

    - 415 unless the Content-Type is JSON (a web page cannot send JSON cross-origin without a preflight);
    - 413 over `max_bytes`: answered from Content-Length before reading, else as soon as the stream passes it;
      the rest of the body is then read and thrown away (bounded by DRAIN_LIMIT and the read timeout) so the
      client reads the 413 instead of a reset;
    - 408 when the body has not arrived `read_timeout` seconds after the headers; the connection is closed;
    - nothing (counted as 499) when the client disconnects while sending.
    The app then receives the body in one message; later `receive()` calls wait for the client's disconnect."""

    def __init__(self, app: Any, max_bytes: int, read_timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

    def _too_large(self, size: str) -> str:
        return (f"request body of {size} bytes is over the limit of {self.max_bytes} (--max-body-bytes); "
                f"send fewer or shorter inputs")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        content_type = header(scope, b"content-type")
        if not is_json(content_type):
            got = f"Content-Type {content_type.decode('latin-1')[:100]!r}" if content_type else "no Content-Type"
            await send_error(send, 415, f"{got}: send the body as JSON with `Content-Type: application/json`",
                             {"Connection": "close"})
            return
        length = header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                await send_error(send, 400, f"invalid Content-Length header {length.decode('latin-1')[:40]!r}",
                                 {"Connection": "close"})
                return
            if int(length) > self.max_bytes:
                await self._refuse_large(scope, receive, send, self._too_large(length.decode()),
                                         drain=int(length) <= DRAIN_LIMIT)
                return
        deadline = asyncio.get_running_loop().time() + self.read_timeout  # for the whole body, not per chunk
        chunks: list[bytes] = []
        received = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await send_error(send, 408, f"the request body did not arrive within {self.read_timeout:g} s "
                                            f"(--read-timeout); send it at once", {"Connection": "close"})
                return
            except asyncio.CancelledError:  # the graceful shutdown timed out while the body was arriving
                asyncio.current_task().uncancel()
                await send_error(send, 503, "server shutting down; retry in a few seconds",
                                 {"Retry-After": "5", "Connection": "close"})
                return
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer (counted as 499)
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await self._refuse_large(scope, receive, send, self._too_large(f"more than {self.max_bytes}"),
                                         drain=message.get("more_body", False), read=received)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse_large(self, scope: dict, receive: Any, send: Any, message: str, drain: bool,
                            read: int = 0) -> None:
        """The 413 first, then (when `drain`) the rest of the body read and dropped, unless the client waits
        for a 100-continue; then the connection closed."""
        import json

        content = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": content, "more_body": True})
        waits_for_continue = (header(scope, b"expect") or b"").lower() == b"100-continue"
        if drain and not waits_for_continue:
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout_at(loop.time() + self.read_timeout):
                    while read <= DRAIN_LIMIT:
                        part = await receive()
                        read += len(part.get("body", b""))
                        if part["type"] != "http.request" or not part.get("more_body", False):
                            break
            except TimeoutError:
                pass
        await send({"type": "http.response.body", "body": b"", "more_body": False})
