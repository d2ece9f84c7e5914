"""Size limits on every request, checked before any route runs: URL length and body size.

A body that declares more than `MAX_BODY` bytes (Content-Length) is answered 413 before the app
sees the request, so nothing of it is read and no route runs. A body without a declared length
(chunked) is counted as the app reads it; past the limit the read fails with 413, so at most
`MAX_BODY` bytes are ever held. A path and query longer than `MAX_URL` bytes is answered 414.

Starlette's own body limit (`RequestBodyLimitMiddleware`) lets a route that does not read its body
run before answering 413, and answers outside our error page; hence this one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 1024 * 1024  # bytes; the largest form (a hold with many scopes) is a few kB
MAX_URL = 2048  # bytes of path and query; the longest of ours (a roll call search) is far less
TOO_LARGE = f"the request body is larger than {MAX_BODY // 1024} kB"
TOO_LONG = f"the address is longer than {MAX_URL} bytes"

Refusal = Callable[[Scope, int, str], Awaitable[Response]]


class BodyTooLarge(HTTPException):
    """A body without a declared length grew past the limit while it was read."""

    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE)


class RequestLimits:
    """ASGI middleware: refuse long URLs and large bodies; `refuse` renders the answer."""

    def __init__(self, app: ASGIApp, *, refuse: Refusal) -> None:
        self.app = app
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if len(raw_path) + len(scope.get("query_string", b"")) > MAX_URL:
            await (await self.refuse(scope, 414, TOO_LONG))(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await (await self.refuse(scope, 413, TOO_LARGE))(scope, receive, send)
            return
        await self.app(scope, _counted(receive), send)


def _counted(receive: Receive) -> Receive:
    read = 0

    async def receive_within_limit() -> Message:
        nonlocal read
        message = await receive()
        if message["type"] == "http.request":
            read += len(message.get("body", b""))
            if read > MAX_BODY:
                raise BodyTooLarge()
        return message

    return receive_within_limit
