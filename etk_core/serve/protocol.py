"""uvicorn's httptools protocol with a limit on the request line and headers (httptools has none: an 8 MB
header was read and served), and JSON bodies for the errors the HTTP parser answers itself: over the limit a
431, a malformed request a 400; the connection is closed after either."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Most bytes of request line plus headers (nginx's default buffers hold 32 KiB; browsers send a few KiB).
MAX_HEADER_BYTES = 64 * 1024


class HeadersTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing and uvicorn calls `send_400_response`."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """Counts the bytes of the URL and headers of each request; past MAX_HEADER_BYTES answers 431."""

    max_header_bytes = MAX_HEADER_BYTES

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._headers_too_large = False

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._headers_too_large = True
            raise HeadersTooLarge

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if getattr(self, "_headers_too_large", False):
            status = b"431 Request Header Fields Too Large"
            message = f"request line and headers over {self.max_header_bytes} bytes; send shorter headers"
        else:
            status = b"400 Bad Request"
            message = "malformed HTTP request (request line, headers or chunked encoding); send valid HTTP/1.1"
        body = json.dumps({"error": message}).encode()
        self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        self.transport.close()
