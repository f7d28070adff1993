"""HTTP routes, JSON errors and the response headers every route shares."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from .. import __version__
from ..schema import interaction_json_schema, interaction_spark_ddl
from ..times import iso_ms
from ..workers.users import USER_ID_CAPACITY
from .config import ServerConfig
from .guard import bearer_auth, redact_metrics, server_header
from .head import head_response, is_head
from .http_stream import run_stream
from .metrics import prometheus
from .params import INTERACTIONS, METRICS, USERS, describe, parse_interactions, parse_query, parse_users
from .site import SITE, Site
from .sources import ArrowSeededInteractions, LiveInteractions, SeededInteractions, Source, Users

log = logging.getLogger("clickstream.app")
PARAMS = "clickstream.params"  # request key: the route's query parameters, parsed by `query_parameters`
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Catalog ids: the prefix and ASCII digits, at most 10 of them (ids are far shorter; the bound keeps
# int() cheap on hostile input).
_CATALOG_ID = re.compile(r"([up])([0-9]{1,10})")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
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


@web.middleware
async def query_parameters(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every route's query, parsed against the parameter table: unknown or repeated parameters are a 400."""
    route = request.match_info.route.name
    if route is not None:
        request[PARAMS] = parse_query(route, request.query, request.app[SITE].config)
    response: web.StreamResponse = await handler(request)
    return response


async def add_common_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
    response.headers.setdefault("Cache-Control", "no-cache")


async def interactions(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE]
    params = parse_interactions(request[PARAMS], request.headers.get("Accept", ""), site.config)
    if is_head(request):
        return head_response(params.format)
    source: Source
    if params.definition is None:
        assert params.rate_eps is not None  # the live site is always paced
        source = LiveInteractions(site.rings, params.rate_eps, params.clock, site.metrics.live_clock)
    else:
        seeded = ArrowSeededInteractions if params.format == "arrow" else SeededInteractions
        # Admitted (or a 503) before any header is sent; the lease ends with the stream (Source.close).
        lease = site.generators.admit(params.definition, params.rate_eps is None,
                                      lambda: (t := request.transport) is not None and not t.is_closing())
        source = seeded(site.generators, lease, params)
    return await run_stream(request, source, params, site.metrics, site.settings)


async def users(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE]
    params = parse_users(request[PARAMS], request.headers.get("Accept", ""), site.config)
    if is_head(request):
        return head_response(params.format)
    users = Users(site.users, params.offset, params.truth)
    return await run_stream(request, users, params, site.metrics, site.settings)


async def user_by_id(request: web.Request) -> web.Response:
    site = request.app[SITE]
    user = _catalog_index(request.match_info["user_id"], "u", USER_ID_CAPACITY)  # ids past max_users register later
    return _json(site.catalog.user_record(user, site.live.start_ms, truth=True))


async def product_by_id(request: web.Request) -> web.Response:
    site = request.app[SITE]
    product = _catalog_index(request.match_info["product_id"], "p", site.catalog.n_products)
    return _json(site.catalog.product_record(product))


def _catalog_index(text: str, prefix: str, size: int) -> int:
    match = _CATALOG_ID.fullmatch(text)
    if match and match.group(1) == prefix and int(match.group(2)) < size:
        return int(match.group(2))
    raise web.HTTPNotFound(
        text=json.dumps({"error": "not_found", "status": 404, "message": f"no {text!r} in the catalog"}),
        content_type="application/json",
    )


async def test_stream(request: web.Request) -> web.StreamResponse:
    """A smoke test: five lines, 0.1 s apart."""
    if is_head(request):
        return head_response()
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "X-Accel-Buffering": "no"})
    try:
        await response.prepare(request)
        for i in range(5):
            await response.write(json.dumps({"test": i, "timestamp": iso_ms(time.time())}).encode() + b"\n")
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
    fmt = request[PARAMS].get("format")
    wants_text = "text/plain" in request.headers.get("Accept", "") and "application/json" not in request.headers.get(
        "Accept", ""
    )
    if fmt == "prometheus" or (fmt is None and wants_text):
        return web.Response(text=prometheus(snapshot), headers={"Content-Type": PROMETHEUS_CONTENT_TYPE,
                                                                 "X-Content-Type-Options": "nosniff"})
    return _json(snapshot)


async def schema(request: web.Request) -> web.Response:
    return _json({"json_schema": interaction_json_schema(), "spark_ddl": interaction_spark_ddl()})


ROUTES = {
    "GET /stream/interactions": (INTERACTIONS, "the live store's interactions, shared among connections; with seed= "
                                 "a private, replayable stream"),
    "GET /stream/users": (USERS, "users of the store the interactions come from"),
    "GET /users/{user_id}": (None, "one user of the store"),
    "GET /products/{product_id}": (None, "one product of the store, with name and brand"),
    "GET /test-stream": (None, "five test lines, 0.1 s apart"),
    "GET /schema": (None, "the interaction schema as JSON Schema and Spark DDL"),
    "GET /metrics": (METRICS, "counters as JSON, or Prometheus text"),
    "GET /health": (None, "200 while every worker is alive and filling its ring, else 503 with the reason"),
    "GET /": (None, "this document"),
}


def index_body(config: ServerConfig) -> dict[str, Any]:
    parameters = describe(config)
    endpoints: dict[str, Any] = {}
    for path, (route, description) in ROUTES.items():
        endpoints[path] = {"description": description, "parameters": parameters[route]} if route else description
    return {
        "name": "clickstream-datagenerator",
        "version": __version__,
        "message": "Realistic e-commerce clickstream events as HTTP streams (NDJSON, Server-Sent Events or Arrow)",
        "endpoints": endpoints,
    }


async def index(request: web.Request) -> web.Response:
    return _json(index_body(request.app[SITE].config))


def build_app(site: Site) -> web.Application:
    # The guard first: it learns that a request's head is complete, and refuses work past the cap.
    token = [bearer_auth(site.config.auth_token)] if site.config.auth_token else []
    app = web.Application(middlewares=[site.guard.middleware, json_errors, *token, query_parameters])
    app[SITE] = site
    app.on_response_prepare.append(add_common_headers)
    app.on_response_prepare.append(server_header)
    app.router.add_get("/", index, name="index")
    app.router.add_get("/health", health, name="health")
    app.router.add_get("/metrics", metrics, name=METRICS)
    app.router.add_get("/schema", schema, name="schema")
    app.router.add_get("/test-stream", test_stream, name="test_stream")
    app.router.add_get("/stream/interactions", interactions, name=INTERACTIONS)
    app.router.add_get("/stream/users", users, name=USERS)
    app.router.add_get("/users/{user_id}", user_by_id, name="user_by_id")
    app.router.add_get("/products/{product_id}", product_by_id, name="product_by_id")
    return app
