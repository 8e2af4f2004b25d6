"""Pure ASGI middleware: request metrics, API-key check and request-body size limit."""

from __future__ import annotations

import hmac
import time
from typing import Any

from etk_core.serve.responses import send_error

#: Paths that answer without an API key (load balancers and orchestrators probe them).
OPEN_PATHS = ("/healthz", "/readyz")


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
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.observe_request(scope["path"], scope["method"], status, time.perf_counter() - started)


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


class BodyTooLarge(Exception):
    """The request body grew past the limit while it was being read."""


class BodyLimitMiddleware:
    """Answers 413 for a body over `max_bytes`: at once from Content-Length, else while it streams in."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: str) -> str:
        return (f"request body of {size} bytes is over the limit of {self.max_bytes} (--max-body-bytes); "
                f"send fewer or shorter inputs")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await send_error(send, 400, f"invalid Content-Length header {value.decode(errors='replace')!r}")
                    return
                if int(value) > self.max_bytes:
                    await send_error(send, 413, self._message(value.decode()), {"Connection": "close"})
                    return
        received = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await send_error(send, 413, self._message(f"more than {self.max_bytes}"), {"Connection": "close"})
