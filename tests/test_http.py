"""The HTTP contract, against one real server with real workers."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import itertools
import json
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from .conftest import ServerProcess, wait_for


def get(server: ServerProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"{server.url}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def events(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n"), "a stream must end on a whole line"
    return [json.loads(line) for line in body.splitlines()]


def test_count_alone_yields_exactly_that_many_events(server: ServerProcess) -> None:
    for count in (1, 2_500, 20_000):
        status, headers, body = get(server, f"/stream/interactions?count={count}&rate=50000")
        assert status == 200
        assert headers["Content-Type"].startswith("application/x-ndjson")
        assert len(events(body)) == count


def test_duration_paces_the_stream_and_ends_on_time(server: ServerProcess) -> None:
    started = time.monotonic()
    status, _, body = get(server, "/stream/interactions?rate=300&duration=2")
    elapsed = time.monotonic() - started
    assert status == 200
    assert len(events(body)) == 600  # rate x duration, exactly
    assert elapsed > 1.5  # paced over the duration, not dumped at once


def test_count_and_duration_stop_at_whichever_comes_first(server: ServerProcess) -> None:
    assert len(events(get(server, "/stream/interactions?count=50&duration=5&rate=1000")[2])) == 50
    assert len(events(get(server, "/stream/interactions?count=5000&duration=1&rate=100")[2])) == 100


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("rate=abc", "rate"),
        ("rate=0", "rate"),
        ("rate=-5", "rate"),
        ("rate=50001", "rate"),
        ("rate=1.5", "rate"),
        ("duration=0", "duration"),
        ("duration=-1", "duration"),
        ("duration=301", "duration"),
        ("count=-1", "count"),
        ("count=0", "count"),
        ("count=x", "count"),
        ("format=xml", "format"),
        ("rat=100", "rat"),
        ("offset=5", "offset"),
        ("seed=-1", "seed"),
        ("seed=1&shard=70000", "shard"),
        ("seed=1&start=yesterday&count=1", "start"),
        ("seed=1&offset=281474976710655&count=2", "offset"),  # ids are unique below 2^48
        ("seed=1&start=9999-12-31T23:00:00Z&count=5000", "start"),  # past the store's life (its ids run out)
        ("seed=1&start=2026-01-01T00:00:00Z&offset=2000000000&count=5", "offset"),  # past 100 years
        ("seed=1&count=5&event_rate=10", "event_rate"),  # the store decides event time
        ("seed=1&count=5&clock=wall", "clock"),  # a seeded stream keeps the store's time
        ("seed=1&count=5&funnel=shop", "funnel"),
        ("funnel=retail", "funnel"),  # the live site serves its own FUNNEL (mix here)
        ("clock=now", "clock"),
        ("count=100000&rate=10", "count"),
        ("format=arrow", "format"),  # Arrow is for seeded streams only
        ("format=arrow&count=10&rate=100", "format"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(server: ServerProcess, query: str, parameter: str) -> None:
    status, headers, body = get(server, f"/stream/interactions?{query}")
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(body)
    assert error["parameter"] == parameter
    assert error["allowed"] and error["message"]
    assert "Traceback" not in body.decode()


@pytest.mark.parametrize(
    ("path", "parameter", "allowed"),
    [
        ("/stream/interactions?count=1_000", "count", "an integer from 1 to 300000"),
        ("/stream/interactions?count=%2B5", "count", "an integer from 1 to 300000"),  # +5
        ("/stream/interactions?count=%205", "count", "an integer from 1 to 300000"),  # a leading space
        ("/stream/interactions?count=%EF%BC%95", "count", "an integer from 1 to 300000"),  # full-width 5
        ("/stream/interactions?count=%D9%A3", "count", "an integer from 1 to 300000"),  # Arabic-Indic 3
        ("/stream/interactions?rate=", "rate", "an integer from 1 to 50000"),  # empty
        ("/stream/interactions?count=0&rate=10", "count", "an integer from 1 to 3000"),  # the real bound
        ("/stream/interactions?count=5&count=inf", "count", "given once"),
        ("/users/u00000000?x=1", "x", "no parameters"),
        ("/health?verbose=1", "verbose", "no parameters"),
        ("/metrics?format=xml", "format", "one of json, prometheus"),
    ],
)
def test_parameters_are_parsed_strictly(server: ServerProcess, path: str, parameter: str, allowed: str) -> None:
    status, headers, body = get(server, path)
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    error = json.loads(body)
    assert (error["parameter"], error["allowed"]) == (parameter, allowed)


@pytest.mark.parametrize("path", ["/users/u%C2%B2", "/users/u" + "1" * 4301, "/products/p%EF%BC%91", "/users/u-1"])
def test_odd_catalog_ids_are_404s(server: ServerProcess, path: str) -> None:
    status, _, body = get(server, path)
    assert status == 404 and json.loads(body)["error"] == "not_found"


def test_users_bad_input_names_the_range(server: ServerProcess) -> None:
    status, _, body = get(server, "/stream/users?rate=5001")
    assert status == 400
    assert json.loads(body)["allowed"] == "an integer from 1 to 5000"


def test_unknown_paths_and_methods_are_json(server: ServerProcess) -> None:
    status, _, body = get(server, "/nope")
    assert status == 404 and json.loads(body)["status"] == 404
    request = urllib.request.Request(f"{server.url}/health", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 405
    assert "GET" in json.loads(error.value.read())["allowed_methods"]


def test_stream_headers_let_proxies_and_browsers_stream(server: ServerProcess) -> None:
    _, headers, _ = get(server, "/stream/interactions?count=1")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    assert headers["Transfer-Encoding"] == "chunked"


def test_server_sent_events(server: ServerProcess) -> None:
    for path, headers in (
        ("/stream/interactions?count=3&format=sse", {}),
        ("/stream/interactions?count=3", {"Accept": "text/event-stream"}),
    ):
        status, response_headers, body = get(server, path, headers)
        assert status == 200 and response_headers["Content-Type"].startswith("text/event-stream")
        *messages, end = body.decode().split("\n\n")[:-1]
        assert len(messages) == 3
        # The last event says the stream ran its course (a stream cut by shutdown says "shutdown").
        assert end == 'event: end\ndata: {"reason": "complete", "events": 3}'
        for number, message in enumerate(messages, start=1):
            id_line, data_line = message.split("\n")
            assert id_line == f"id: {number}"
            assert json.loads(data_line.removeprefix("data: "))["interaction_type"]


def test_clock_wall_stamps_timestamps_when_sent(server: ServerProcess) -> None:
    url = urlsplit(server.url)
    connection = http.client.HTTPConnection(url.netloc, timeout=30)
    connection.request("GET", "/stream/interactions?rate=2000&duration=3&clock=wall")
    response = connection.getresponse()
    previous = ""
    worst_skew = 0.0
    count = 0
    while line := response.readline():
        received = time.time()
        stamp = json.loads(line)["timestamp"]
        assert stamp >= previous  # non-decreasing within a connection
        previous = stamp
        sent = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        worst_skew = max(worst_skew, abs(received - sent))
        count += 1
    connection.close()
    assert count == 6000
    assert worst_skew < 1.0


def test_the_live_site_runs_on_the_stores_clock(server: ServerProcess) -> None:
    status, headers, body = get(server, "/stream/interactions?count=40000&rate=50000")
    assert status == 200 and headers["Clickstream-Speed"] == "auto"
    by_session: dict[str, list[dict[str, Any]]] = {}
    for event in events(body):
        by_session.setdefault(event["session_id"], []).append(event)
    gaps = 0
    for session in by_session.values():
        for before, after in itertools.pairwise(session):
            gap_s = (_epoch_s(after["timestamp"]) - _epoch_s(before["timestamp"]))
            assert gap_s >= (before["duration"] or 0)  # a view's time is spent before the next event
            gaps += 1
    assert gaps > 1000
    speed = server.json("/metrics")["event_time_speed"]
    assert speed is not None and speed > 1  # far more store time than wall time at 50,000/s
    _, seeded_headers, _ = get(server, "/stream/interactions?seed=5&count=10")
    assert seeded_headers["Clickstream-Speed"] == "unpaced"
    _, wall_headers, _ = get(server, "/stream/interactions?count=10&clock=wall")
    assert wall_headers["Clickstream-Speed"] == "1"


def _epoch_s(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_connections_share_one_site_each_event_to_exactly_one(server: ServerProcess) -> None:
    async def fetch_all() -> list[bytes]:
        async with aiohttp.ClientSession() as session:

            async def one() -> bytes:
                async with session.get(f"{server.url}/stream/interactions?count=20000&rate=50000") as response:
                    return await response.read()

            return await asyncio.gather(*(one() for _ in range(4)))

    bodies = asyncio.run(fetch_all())
    ids = [e["interaction_id"] for body in bodies for e in events(body)]
    assert len(ids) == 80_000
    assert len(set(ids)) == len(ids)


def test_a_lone_connection_sees_sessions_unfold(server: ServerProcess) -> None:
    body = get(server, "/stream/interactions?count=60000&rate=50000")[2]
    by_session: dict[str, list[dict[str, Any]]] = {}
    for event in events(body):
        by_session.setdefault(event["session_id"], []).append(event)
    multi = [s for s in by_session.values() if len(s) > 1]
    assert multi, "sessions must have more than one event"
    for session in multi:
        assert len({e["user_id"] for e in session}) == 1
        indexes = [e["session_event_index"] for e in session]
        assert indexes == sorted(indexes)


def test_users_stream_serves_the_users_interactions_name(server: ServerProcess) -> None:
    interaction = events(get(server, "/stream/interactions?count=1")[2])[0]
    status, _, body = get(server, f"/users/{interaction['user_id']}")
    assert status == 200
    user = json.loads(body)
    assert user["user_id"] == interaction["user_id"]
    assert user["user_segment"] == interaction["user_segment"]
    assert (user["city"], user["country"]) == (interaction["city"], interaction["country"])
    number = int(interaction["user_id"][1:])
    streamed = events(get(server, f"/stream/users?count=2&offset={number}&rate=5000&truth=true")[2])
    assert streamed[0] == user  # /users/{id} carries the ground truth; the stream with truth=true too
    assert set(user["truth"]) >= {"segment", "churn_time"}
    assert "truth" not in events(get(server, f"/stream/users?count=1&offset={number}")[2])[0]
    assert set(streamed[0]) >= {
        "user_id", "email", "first_name", "last_name", "age", "gender", "location", "user_segment",
        "registration_date", "last_active", "total_spent", "order_count", "preferences", "device_type", "browser",
    }
    product = json.loads(get(server, f"/products/{interaction['product_id']}")[2])
    assert product["price"] == interaction["price"] and product["category"] == interaction["category"]


def test_seeded_streams_replay_byte_for_byte(server: ServerProcess) -> None:
    base = "/stream/interactions?seed=42&start=2026-03-01T00:00:00Z"
    first = get(server, f"{base}&offset=0&count=3000")[2]
    again = get(server, f"{base}&offset=0&count=3000")[2]
    assert first == again
    window = get(server, f"{base}&offset=1000&count=500")[2]
    assert window.splitlines() == first.splitlines()[1000:1500]
    parsed = events(window)
    assert [e["seq"] for e in parsed] == list(range(1000, 1500))
    # The store's clock: from the start on, position order is event-time order.
    stamps = [e["timestamp"] for e in events(first)]
    assert stamps == sorted(stamps) and stamps[0] >= "2026-03-01T00:00:00.000Z"


def test_checkout_orders_buy_what_the_session_carted(server: ServerProcess) -> None:
    rows = events(get(server, "/stream/interactions?seed=5&count=60000")[2])
    carted: dict[str, list[tuple[str, int]]] = {}
    orders: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(rows, key=lambda e: (e["session_id"], e["session_event_index"])):
        if e["interaction_type"] == "add_to_cart":
            carted.setdefault(e["session_id"], []).append((e["product_id"], e["quantity"]))
        if e["interaction_type"] == "purchase":
            assert e["order_id"].startswith(e["session_id"] + "-")
            orders.setdefault(e["order_id"], []).append(e)
        else:
            assert e["order_id"] is None
    bought: dict[str, list[tuple[str, int]]] = {}
    for items in orders.values():
        assert len({i["timestamp"][:15] for i in items}) <= 2  # one checkout, seconds apart
        for item in items:
            bought.setdefault(item["session_id"], []).append((item["product_id"], item["quantity"]))
    # The i-th item bought in a session is its i-th add_to_cart, with that quantity (sessions seen from their
    # first event: the stream starts with sessions under way).
    whole = {e["session_id"] for e in rows if e["session_event_index"] == 1}
    assert all(carted[s][: len(items)] == items for s, items in bought.items() if s in whole)
    assert sum(len(items) > 1 for items in orders.values()) >= 0.2 * len(orders)


def test_funnel_retail_is_a_real_shops_mix(server: ServerProcess) -> None:
    status, _, body = get(server, "/stream/interactions?seed=5&count=50000&funnel=retail")
    assert status == 200
    kinds = [e["interaction_type"] for e in events(body)]
    views, carts, buys = (kinds.count(k) / len(kinds) for k in ("view", "add_to_cart", "purchase"))
    assert abs(views - 0.967) < 0.01 and abs(carts - 0.025) < 0.006 and abs(buys - 0.008) < 0.004
    assert kinds.count("click") == kinds.count("wishlist") == 0
    mixed = events(get(server, "/stream/interactions?seed=5&count=2000&funnel=mix")[2])
    assert mixed == events(get(server, "/stream/interactions?seed=5&count=2000")[2])  # mix is the default


def test_seeded_arrow_is_the_ndjson_rows_as_an_arrow_stream(server: ServerProcess) -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed: pip install -e '.[spark]'")
    import pyarrow.ipc
    import pyarrow.json

    from clickstream.workers.arrow import interaction_arrow_schema

    schema = interaction_arrow_schema()
    base = "/stream/interactions?seed=42&shard=2&start=2026-03-01T00:00:00Z"
    # 10,000 rows: two whole batches of the server's 4,096 and a partial one; 1 row: a single tiny batch.
    for offset, count in ((150_000, 10_000), (7, 1)):
        status, headers, body = get(server, f"{base}&offset={offset}&count={count}&format=arrow")
        assert status == 200, body[:300]
        assert headers["Content-Type"].startswith("application/vnd.apache.arrow.stream")
        reader = pyarrow.ipc.open_stream(body)
        batches = list(reader)
        assert reader.schema.equals(schema)
        assert sum(b.num_rows for b in batches) == count
        assert max(b.num_rows for b in batches) <= 4096
        ndjson = get(server, f"{base}&offset={offset}&count={count}")[2]
        expected = pyarrow.json.read_json(
            pa.py_buffer(ndjson), parse_options=pyarrow.json.ParseOptions(explicit_schema=schema)
        )
        assert pa.Table.from_batches(batches).equals(expected.combine_chunks())
        assert get(server, f"{base}&offset={offset}&count={count}&format=arrow")[2] == body  # replayable


def test_arrow_refusals_say_what_is_allowed(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    status, _, body = get(server, "/stream/interactions?format=arrow&count=5")
    error = json.loads(body)
    assert status == 400 and error["parameter"] == "format" and "seed=" in error["allowed"]
    status, _, body = get(server, "/stream/users?format=arrow&count=5")
    assert status == 400 and json.loads(body)["allowed"] == "one of ndjson, sse"
    # A server without pyarrow: the same parameter check, in process.
    from clickstream.server import params
    from clickstream.server.config import ServerConfig

    monkeypatch.setattr(params, "arrow_available", lambda: False)
    with pytest.raises(params.InvalidParameter) as refused:
        params.parse_interactions({"seed": "1", "count": "5", "format": "arrow"}, "", ServerConfig())
    error = json.loads(refused.value.text or "")
    assert error["parameter"] == "format" and error["allowed"] == "one of ndjson, sse"
    assert "pyarrow" in error["message"]


def test_metrics_json_and_prometheus(server: ServerProcess) -> None:
    get(server, "/stream/interactions?count=10")
    metrics = server.json("/metrics")
    for key in ("cached_users", "cached_products", "initialized", "uptime_seconds", "active_connections",
                "events_sent_total", "bytes_sent_total", "send_rate_1s_eps", "send_rate_10s_eps", "workers"):
        assert key in metrics
    assert metrics["cached_users"] == 100_000 and metrics["initialized"] is True
    assert metrics["events_sent_total"] >= 10
    assert all(w["events_generated"] > 0 and w["restarts"] == 0 for w in metrics["workers"])
    for path, headers in (("/metrics?format=prometheus", {}), ("/metrics", {"Accept": "text/plain"})):
        status, response_headers, body = get(server, path, headers)
        assert status == 200 and response_headers["Content-Type"].startswith("text/plain")
        text = body.decode()
        assert "# TYPE clickstream_events_sent_total counter" in text
        assert 'clickstream_worker_events_generated_total{worker="0"}' in text


def test_open_streams_show_in_metrics_and_disconnects_leave_nothing(server: ServerProcess) -> None:
    url = urlsplit(server.url)
    before = server.json("/metrics")["streams_disconnected_total"]
    connection = http.client.HTTPConnection(url.netloc, timeout=30)
    connection.request("GET", "/stream/interactions?rate=1000&duration=60")
    response = connection.getresponse()
    response.readline()
    streams = wait_for(lambda: server.json("/metrics")["streams"])
    assert streams[0]["target_rate_eps"] == 1000
    connection.close()  # the client goes away mid-stream
    wait_for(lambda: server.json("/metrics")["active_connections"] == 0)
    assert server.json("/metrics")["streams_disconnected_total"] == before + 1
    assert get(server, "/health")[0] == 200


def test_health_index_schema_and_test_stream(server: ServerProcess) -> None:
    status, _, body = get(server, "/health")
    assert status == 200 and json.loads(body)["status"] == "healthy"
    index = server.json("/")
    assert index["name"] == "clickstream-datagenerator"
    assert "rate" in index["endpoints"]["GET /stream/interactions"]["parameters"]
    schema = server.json("/schema")
    assert schema["spark_ddl"].startswith("timestamp TIMESTAMP, seq BIGINT")
    assert "interaction_id" in schema["json_schema"]["properties"]
    test_lines = events(get(server, "/test-stream")[2])
    assert [line["test"] for line in test_lines] == [0, 1, 2, 3, 4]


# The bytes of seeded streams, pinned: a refactor must not change a single one. A change that changes them on
# purpose updates these digests in the same commit and says why (all three changed when the store's own
# clock replaced the rate-derived one; the SSE one before that, when SSE streams gained their `end` event;
# all three when users' countries, cities and devices came from the store's markets and `os` joined the rows;
# all three when sessions gained intent, checkout orders (`order_id`), product families and the funnel's exits).
PINNED_SEEDED_STREAMS = {
    "seed=7&count=20000": "89ea4b49b86092333fe32446f8c7b50600380f7b665481993f2287f8fdc22ae2",
    "seed=3&shard=2&offset=123456&count=5000&start=2025-06-01T00:00:00Z":
        "81d767135a60e2b6188716657d55b6148f72a687003a5299ec04b1da2a21a6f7",
    "seed=7&count=3000&format=sse": "4a93732b1d3ae7ef25a85aeb635bd12189e0f0d82f1048f7415da7ec0e81b036",
}


@pytest.mark.parametrize("query", sorted(PINNED_SEEDED_STREAMS))
def test_seeded_streams_keep_their_pinned_bytes(server: ServerProcess, query: str) -> None:
    status, _, body = get(server, f"/stream/interactions?{query}")
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == PINNED_SEEDED_STREAMS[query]
