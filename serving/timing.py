"""Each answer says how long the service took: a ``Server-Timing: app;dur=<ms>`` header (W3C Server Timing).

The time runs from the moment the app receives the request to the moment it starts the response, so it
holds the auth check, the handler and a wait for a worker thread, but not the time the request spent in
the socket or in the event loop's queue before the app saw it. A client that compares it with the latency
it observed sees how much of that latency is the service's own. It says nothing about the request or the
data, only a duration, and costs two clock reads: it stays on in production.

A plain ASGI middleware, not Starlette's ``BaseHTTPMiddleware`` (which runs each request in a task of its
own and streams the body through a queue).

>>> from starlette.applications import Starlette
>>> from starlette.responses import PlainTextResponse
>>> from starlette.testclient import TestClient
>>> app = Starlette()
>>> app.add_route("/", lambda request: PlainTextResponse("hi"))
>>> app.add_middleware(ServerTiming)
>>> TestClient(app).get("/").headers["server-timing"].startswith("app;dur=")
True
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRIC = "app"


class ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>`` (milliseconds, two decimals) to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                duration = (time.perf_counter() - start) * 1000
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"server-timing", f"{METRIC};dur={duration:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)


def server_duration_ms(header: str | None) -> float | None:
    """The ``app`` duration of a ``Server-Timing`` header value, in ms (None when it has none).

    >>> server_duration_ms("db;dur=1.5, app;dur=3.25")
    3.25
    """
    for metric in (header or "").split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        if name == METRIC:
            for param in params:
                key, _, value = param.partition("=")
                if key == "dur":
                    return float(value)
    return None
