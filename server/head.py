"""HEAD on a streaming route: the headers a GET would get, no body, no events taken from anyone.

aiohttp answers HEAD with the GET handler; a streaming handler wrote its body anyway, which corrupted a
kept-alive connection (the next response's status line arrived after a body nobody expected) and took
live events from the rings that no client received.
"""

from __future__ import annotations

from aiohttp import web

from .http_stream import CONTENT_TYPES, STREAM_HEADERS


def is_head(request: web.Request) -> bool:
    return request.method == "HEAD"


def head_response(fmt: str = "ndjson") -> web.Response:
    # No Content-Length (aiohttp leaves it out for an empty HEAD response): the GET's length is unknown.
    return web.Response(headers={**STREAM_HEADERS, "Content-Type": CONTENT_TYPES[fmt]})
