"""What a public deploy needs at the HTTP edge: an optional bearer token, private metrics, no versions.

- `AUTH_TOKEN`: when set, every route but /health needs `Authorization: Bearer <token>` (a platform's
  health check carries no secret), else a JSON 401 with `WWW-Authenticate: Bearer` (RFC 6750). Compared
  with `hmac.compare_digest`, so the time taken says nothing about how much of a guess was right.
- `PRIVATE_METRICS`: /metrics keeps its counters but drops worker PIDs and the per-stream list (each open
  stream's path, rate and age: other clients' queries, seeds included). Chosen over "needs the token"
  because that is what AUTH_TOKEN already does to /metrics, while a deploy without a token (an open
  demo) still wants a scraper to read its counters without learning what to attack or who asks what.
- `Server: clickstream`, not aiohttp's `Python/3.x aiohttp/3.x`: versions only help an attacker.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("clickstream.guard")

OPEN_PATHS = frozenset({"/health"})
SERVER_HEADER = "clickstream"
PUBLIC_HOSTS = frozenset({"0.0.0.0", "::", ""})


def unauthorized(error: str, message: str) -> web.Response:
    body = {"error": error, "status": 401, "message": message}
    challenge = 'Bearer realm="clickstream"' + ("" if error == "unauthorized" else f', error="{error}"')
    return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})


def bearer_auth(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that lets through requests carrying the token (and /health)."""
    expected = token.encode()

    @web.middleware
    async def require_token(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return unauthorized("unauthorized", "this server needs Authorization: Bearer <token>")
        if not hmac.compare_digest(given.strip().encode(), expected):
            return unauthorized("invalid_token", "the bearer token is not the server's")
        return await handler(request)

    return require_token


def redact_metrics(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The /metrics snapshot without worker PIDs and without the per-stream list (PRIVATE_METRICS)."""
    workers = [{k: v for k, v in w.items() if k != "pid"} for w in snapshot["workers"]]
    return {**snapshot, "workers": workers, "streams": []}


async def server_header(request: web.Request, response: web.StreamResponse) -> None:
    """An on_response_prepare hook: it runs before aiohttp sets its default `Server`."""
    response.headers["Server"] = SERVER_HEADER


def announce_bind(host: str, port: int, token_set: bool) -> None:
    if host in PUBLIC_HOSTS:
        log.warning("listening on all interfaces (%s:%d): the server is public%s", host or "*", port,
                    "; every route but /health needs the bearer token" if token_set
                    else ", with no authentication (set AUTH_TOKEN to require a bearer token)")


def hide_versions() -> None:
    """aiohttp's own responses (its 400 for a request it cannot parse) bypass the app's hooks: they take
    `Server` from this module constant, so it is replaced once, at start-up."""
    import aiohttp.web_response

    aiohttp.web_response.SERVER_SOFTWARE = SERVER_HEADER  # type: ignore[attr-defined]
