"""The generator core: determinism, random access, the schema, and the realism report's figures."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import Any

import pytest

from clickstream.report import measure
from clickstream.schema import INTERACTION_FIELDS, interaction_json_schema
from clickstream.workers.generator import EventGenerator, render_ndjson
from clickstream.workers.model import ModelConfig

SMALL = ModelConfig(seed=11, max_users=20_000, max_products=5_000)
START_MS = 1_767_225_600_000


@pytest.fixture(scope="module")
def generator() -> EventGenerator:
    return EventGenerator(SMALL, shard=0)


def lines(generator: EventGenerator, first: int, count: int) -> list[bytes]:
    return generator.render_stamped(first, count, START_MS, 1000).tobytes().splitlines(keepends=True)


def test_every_line_is_one_json_object_with_the_schema_fields_in_order(generator: EventGenerator) -> None:
    schema = interaction_json_schema()
    names = [name for name, *_ in INTERACTION_FIELDS]
    for line in lines(generator, 0, 5000):
        assert line.endswith(b"}\n") and line.count(b"\n") == 1
        event = json.loads(line)
        assert list(event) == names
        for name, value in event.items():
            types = schema["properties"][name]["type"]
            allowed: dict[str, type | tuple[type, ...]] = {
                "string": str, "integer": int, "number": (int, float), "null": type(None)
            }
            assert isinstance(value, tuple(allowed[t] for t in ([types] if isinstance(types, str) else types)))


def test_every_field_encodes_what_the_model_decided(generator: EventGenerator) -> None:
    """Decode the bytes and compare each field with the model's arrays and the catalog, event by event."""
    from clickstream.workers.model import CATEGORIES, DEVICE_PROFILES, INTERACTION_TYPES, REFERRERS, SEGMENTS

    first, count = 200_000, 30_000
    model = generator.behaviour.events(first, count).copy()
    catalog = generator.catalog
    for i, line in enumerate(lines(generator, first, count)):
        e = json.loads(line)
        user, product = int(model.user[i]), int(model.product[i])
        device, browser, info, _ = DEVICE_PROFILES[int(model.profile[i])]
        city = catalog.cities[int(catalog.user_city[user])]
        expected = {
            "seq": first + i,
            "session_event_index": int(model.session_event_index[i]),
            "interaction_type": INTERACTION_TYPES[int(model.interaction_type[i])],
            "duration": int(model.duration_s[i]) or None,
            "quantity": int(model.quantity[i]) or None,
            "revenue": int(model.revenue_cents[i]) / 100,
            "user_id": catalog.user_id(user),
            "user_segment": SEGMENTS[int(catalog.user_segment[user])],
            "country": city.country_code,
            "city": city.name,
            "product_id": catalog.product_id(product),
            "category": CATEGORIES[int(catalog.product_category[product])],
            "price": int(catalog.product_price_cents[product]) / 100,
            "referrer": REFERRERS[int(model.referrer[i])][0],
            "device_type": device,
            "browser": browser,
            "device_info": info,
        }
        assert {k: e[k] for k in expected} == expected, f"position {first + i}"


def test_starting_anywhere_gives_the_same_bytes(generator: EventGenerator) -> None:
    epoch = generator.behaviour.epoch_events
    whole = lines(generator, epoch - 3000, 6000)  # straddles an epoch boundary
    assert lines(generator, epoch - 1000, 2000) == whole[2000:4000]
    assert lines(EventGenerator(SMALL, shard=0), epoch + 10, 5) == whole[3010:3015]


def test_same_inputs_give_identical_bytes_in_another_process() -> None:
    digest = hashlib.sha256(
        render_ndjson(seed=11, shard=2, first_seq=12_345, count=3000, start_ms=START_MS, event_rate=500,
                      max_users=20_000, max_products=5_000)
    ).hexdigest()
    code = (
        "import hashlib; from clickstream.workers.generator import render_ndjson; "
        "print(hashlib.sha256(render_ndjson(seed=11, shard=2, first_seq=12_345, count=3000, "
        f"start_ms={START_MS}, event_rate=500, max_users=20_000, max_products=5_000)).hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == digest


def test_shards_and_seeds_differ_and_ids_never_repeat(generator: EventGenerator) -> None:
    other_shard = EventGenerator(SMALL, shard=1, catalog=generator.catalog)
    events = [json.loads(x) for x in lines(generator, 0, 20_000) + lines(other_shard, 0, 20_000)]
    ids = [e["interaction_id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert lines(generator, 0, 10) != lines(other_shard, 0, 10)
    other_seed = EventGenerator(ModelConfig(12, SMALL.max_users, SMALL.max_products))
    assert lines(generator, 0, 10) != lines(other_seed, 0, 10)


def test_timestamps_follow_the_stream_definition(generator: EventGenerator) -> None:
    events = [json.loads(x) for x in lines(generator, 1_000, 3)]
    assert [e["timestamp"] for e in events] == [
        "2026-01-01T00:00:01.000Z", "2026-01-01T00:00:01.001Z", "2026-01-01T00:00:01.002Z"
    ]
    assert [e["seq"] for e in events] == [1000, 1001, 1002]


def test_the_realism_report_meets_every_target_over_a_million_events() -> None:
    figures = measure(EventGenerator(ModelConfig(seed=7)), events=1_000_000, rate_eps=1000)
    assert figures.mix_max_error_pp <= 1.5
    assert figures.funnel_violations == 0, figures.funnel_violation_examples
    assert figures.funnel_checked_sessions > 100_000
    assert figures.price_out_of_range == 0
    assert figures.field_errors == 0
    assert figures.user_inconsistencies == 0
    assert figures.timestamps_non_decreasing
    for segment, target in zip(("casual", "regular", "power", "premium"), (0.40, 0.35, 0.20, 0.05), strict=True):
        assert abs(figures.user_segment_share[segment] - target) < 0.01
        assert abs(figures.event_segment_share[segment] - target) < 0.015
    assert figures.events_per_session["max"] <= 32 and figures.events_per_session["mean"] > 3
    assert figures.top1pct_product_view_share > 0.3  # popularity is skewed: a few products draw most views
    assert figures.distinct_users > 50_000 and figures.distinct_products > 20_000


def test_users_live_in_real_cities_and_emails_are_unique(generator: EventGenerator) -> None:
    from datetime import date

    from clickstream.workers.catalog import Catalog

    catalog = Catalog.build(SMALL, generator.catalog.cities, with_names=True)
    records: list[dict[str, Any]] = [catalog.user_record(u, date(2026, 11, 27)) for u in range(catalog.n_users)]
    assert len({r["email"] for r in records}) == len(records)
    cities = {(c.name, c.country_code) for c in catalog.cities}
    assert all((r["city"], r["country"]) in cities for r in records)
    assert ("Tokyo", "JP") in cities or ("Shanghai", "CN") in cities
    assert all(r["last_active"] >= r["registration_date"] for r in records)
    assert all((r["order_count"] == 0) == (r["total_spent"] == 0) for r in records)
    assert all(1 <= len(r["preferences"]) <= 4 for r in records)
