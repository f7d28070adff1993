"""HTTP routes, JSON errors and the response headers every route shares."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .. import __version__
from ..schema import interaction_json_schema, interaction_spark_ddl
from ..workers.catalog import Catalog
from .config import ServerConfig
from .feed import SiteFeed
from .guard import bearer_auth, redact_metrics, server_header
from .head import head_response, is_head
from .limits import ConnectionGuard
from .metrics import Metrics, prometheus
from .params import InvalidParameter, parse_interactions, parse_users
from .seeded import SeededPool
from .sources import ArrowSeededInteractions, LiveInteractions, SeededInteractions, Users
from .stream import StreamSettings, run_stream
from .supervisor import Supervisor
from .users import UserLines

log = logging.getLogger("clickstream.app")


@dataclass
class Site:
    """What the routes share: built once by the server's lifecycle (main.py)."""

    config: ServerConfig
    supervisor: Supervisor
    feed: SiteFeed
    catalog: Catalog
    generators: SeededPool
    metrics: Metrics
    settings: StreamSettings
    users: UserLines
    guard: ConnectionGuard


SITE = web.AppKey("site", Site)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error is JSON; nothing unexpected leaks a stack trace to the client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise  # already JSON (InvalidParameter, our 404s), or not an error
        body: dict[str, Any] = {"error": exc.reason.lower().replace(" ", "_"), "status": exc.status,
                                "path": request.path}
        headers = {}
        if isinstance(exc, web.HTTPMethodNotAllowed):
            body["allowed_methods"] = sorted(exc.allowed_methods)
            headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return web.json_response(body, status=exc.status, headers=headers)
    except (asyncio.CancelledError, ConnectionError):
        raise  # a client that went away (any ConnectionError) is not a server error
    except Exception:
        log.exception("unexpected error on %s", request.path_qs)
        return _json({"error": "internal_error", "status": 500, "path": request.path}, status=500)


async def add_common_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
    response.headers.setdefault("Cache-Control", "no-cache")


async def interactions(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE]
    params = parse_interactions(request.query, request.headers.get("Accept", ""), site.config)
    if is_head(request):
        return head_response(params.format)
    if params.seed is None:
        source: Any = LiveInteractions(site.feed)
    else:
        assert params.start_ms is not None  # parse_interactions fills the default for seeded streams
        start_ms = params.start_ms
        seeded = ArrowSeededInteractions if params.format == "arrow" else SeededInteractions
        # Admitted (or a 503) before any header is sent; the lease ends with the stream (Source.close).
        lease = site.generators.admit(params.seed, params.shard, params.rate_eps is None,
                                      lambda: (t := request.transport) is not None and not t.is_closing())
        source = seeded(site.generators, lease, params.offset, start_ms, params.event_rate_eps)
    return await run_stream(request, source, params, site.metrics, site.settings)


async def users(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE]
    params = parse_users(request.query, request.headers.get("Accept", ""), site.config)
    if is_head(request):
        return head_response(params.format)
    return await run_stream(request, Users(site.users, params.offset), params, site.metrics, site.settings)


async def user_by_id(request: web.Request) -> web.Response:
    site = request.app[SITE]
    user = _catalog_index(request.match_info["user_id"], "u", site.catalog.n_users)
    return _json(site.catalog.user_record(user, datetime.now(UTC).date()))


async def product_by_id(request: web.Request) -> web.Response:
    site = request.app[SITE]
    product = _catalog_index(request.match_info["product_id"], "p", site.catalog.n_products)
    return _json(site.catalog.product_record(product))


def _catalog_index(text: str, prefix: str, size: int) -> int:
    if text.startswith(prefix) and text[1:].isdigit() and int(text[1:]) < size:
        return int(text[1:])
    raise web.HTTPNotFound(
        text=json.dumps({"error": "not_found", "status": 404, "message": f"no {text!r} in the catalog"}),
        content_type="application/json",
    )


async def test_stream(request: web.Request) -> web.StreamResponse:
    """The original's smoke test: five lines, 0.1 s apart."""
    if is_head(request):
        return head_response()
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "X-Accel-Buffering": "no"})
    try:
        await response.prepare(request)
        for i in range(5):
            await response.write(json.dumps({"test": i, "timestamp": time.time()}).encode() + b"\n")
            if i < 4:
                await asyncio.sleep(0.1)
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away
    return response


async def health(request: web.Request) -> web.Response:
    site = request.app[SITE]
    ok, reason = site.supervisor.healthy()
    body = {"status": "healthy" if ok else "unhealthy", "timestamp": time.time(), "reason": reason,
            "workers": [{"index": w["index"], "state": w["state"], "heartbeat_age_s": w["heartbeat_age_s"]}
                        for w in site.supervisor.snapshot()]}
    return _json(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    site = request.app[SITE]
    snapshot = site.metrics.snapshot(
        site.supervisor.snapshot(), {"users": site.catalog.n_users, "products": site.catalog.n_products}
    )
    snapshot.update(site.guard.snapshot(), **site.generators.snapshot())
    if site.config.private_metrics:
        snapshot = redact_metrics(snapshot)
    fmt = request.query.get("format")
    if fmt not in (None, "json", "prometheus"):
        raise InvalidParameter("format", fmt, "json or prometheus")
    wants_text = "text/plain" in request.headers.get("Accept", "") and "application/json" not in request.headers.get(
        "Accept", ""
    )
    if fmt == "prometheus" or (fmt is None and wants_text):
        return web.Response(text=prometheus(snapshot), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})
    return _json(snapshot)


async def schema(request: web.Request) -> web.Response:
    return _json({"json_schema": interaction_json_schema(), "spark_ddl": interaction_spark_ddl()})


def index_body(config: ServerConfig) -> dict[str, Any]:
    rate = f"integer 1-{config.max_rate_eps}, default {config.default_rate_eps}"
    duration = f"integer 1-{config.max_duration_s} s, default {config.default_duration_s} (without count)"
    return {
        "name": "clickstream-datagenerator",
        "version": __version__,
        "message": "Realistic e-commerce clickstream events as HTTP streams (NDJSON or Server-Sent Events)",
        "endpoints": {
            "GET /stream/interactions": {
                "description": "the live site's interactions, shared among connections; with seed= a private, "
                "replayable stream",
                "parameters": {
                    "rate": rate + " (with seed and count: unpaced when omitted)",
                    "duration": duration,
                    "count": f"integer >= 1; alone: exactly count events (at most rate x {config.max_duration_s})",
                    "format": "ndjson (default) or sse; Accept: text/event-stream also selects sse; with seed= also "
                    "arrow (an Arrow IPC stream, application/vnd.apache.arrow.stream, if the server has pyarrow)",
                    "seed": "integer 0-2^63-1: a replayable stream of the site with this seed",
                    "shard": "integer 0-65535, default 0 (with seed)",
                    "offset": "integer >= 0: first position (with seed), default 0",
                    "start": "event time of position 0, epoch ms or ISO-8601 (with seed), default 2026-01-01T00:00:00Z",
                    "event_rate": "events per second of event time (with seed), default rate or 1000",
                },
            },
            "GET /stream/users": {
                "description": "users of the catalog the interactions use",
                "parameters": {
                    "rate": f"integer 1-{config.max_user_rate_eps}",
                    "duration": duration,
                    "count": "integer >= 1",
                    "format": "ndjson or sse",
                    "offset": f"integer 0-{config.model.max_users - 1}: first user",
                },
            },
            "GET /users/{user_id}": "one user of the catalog",
            "GET /products/{product_id}": "one product of the catalog, with name and brand",
            "GET /test-stream": "five test lines, 0.1 s apart",
            "GET /schema": "the interaction schema as JSON Schema and Spark DDL",
            "GET /metrics": "JSON; Prometheus text with Accept: text/plain or ?format=prometheus",
            "GET /health": "200 while every worker is alive and filling its ring, else 503 with the reason",
            "GET /": "this document",
        },
    }


async def index(request: web.Request) -> web.Response:
    return _json(index_body(request.app[SITE].config))


def build_app(site: Site) -> web.Application:
    # The guard first: it learns that a request's head is complete, and refuses work past the cap.
    token = [bearer_auth(site.config.auth_token)] if site.config.auth_token else []
    app = web.Application(middlewares=[site.guard.middleware, json_errors, *token])
    app[SITE] = site
    app.on_response_prepare.append(add_common_headers)
    app.on_response_prepare.append(server_header)
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/schema", schema)
    app.router.add_get("/test-stream", test_stream)
    app.router.add_get("/stream/interactions", interactions)
    app.router.add_get("/stream/users", users)
    app.router.add_get("/users/{user_id}", user_by_id)
    app.router.add_get("/products/{product_id}", product_by_id)
    return app
