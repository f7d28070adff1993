"""The generator core: determinism, random access, the schema, the encoder (the store model's own figures are
in test_store_model.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from clickstream.limits import DEFAULT_START_MS
from clickstream.schema import INTERACTION_FIELDS, interaction_json_schema
from clickstream.workers.generator import EventGenerator, render_ndjson
from clickstream.workers.model import ModelConfig

SMALL = ModelConfig(seed=11, max_users=20_000, max_products=5_000)
START_MS = DEFAULT_START_MS


@pytest.fixture(scope="module")
def generator() -> EventGenerator:
    return EventGenerator(SMALL, shard=0)


def lines(generator: EventGenerator, first: int, count: int) -> list[bytes]:
    return generator.render(first, count).tobytes().splitlines(keepends=True)


def test_every_line_is_one_json_object_with_the_schema_fields_in_order(generator: EventGenerator) -> None:
    schema = interaction_json_schema()
    names = [name for name, *_ in INTERACTION_FIELDS]
    for line in lines(generator, 0, 5000):
        assert line.endswith(b"}\n") and line.count(b"\n") == 1
        event = json.loads(line)
        assert list(event) == names
        for name, value in event.items():
            types = schema["properties"][name]["type"]
            allowed: dict[str, Any] = {"string": str, "integer": int, "number": (int, float), "null": type(None)}
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
        device, browser, os_name, _ = DEVICE_PROFILES[int(model.profile[i])]
        city = catalog.cities[int(catalog.users.city(np.array([user]))[0])]
        expected = {
            "seq": first + i,
            "session_event_index": int(model.session_event_index[i]),
            "interaction_type": INTERACTION_TYPES[int(model.interaction_type[i])],
            "duration": int(model.duration_s[i]) or None,
            "quantity": int(model.quantity[i]) or None,
            "revenue": int(model.revenue_cents[i]) / 100,
            "user_id": catalog.user_id(user),
            "user_segment": SEGMENTS[int(catalog.users.segment(np.array([user]))[0])],
            "timestamp": str(np.datetime64(int(model.time_ms[i]), "ms")) + "Z",
            "country": city.country_code,
            "city": city.name,
            "product_id": catalog.product_id(product),
            "category": CATEGORIES[int(catalog.product_category[product])],
            "price": int(catalog.product_price_cents[product]) / 100,
            "referrer": REFERRERS[int(model.referrer[i])][0],
            "device_type": device,
            "browser": browser,
            "device_info": f"{device} - {browser}",
            "os": os_name,
        }
        assert {k: e[k] for k in expected} == expected, f"position {first + i}"


def test_starting_anywhere_gives_the_same_bytes(generator: EventGenerator) -> None:
    behaviour = generator.behaviour
    epoch = behaviour.first_position(behaviour.e0 + 1)
    whole = lines(generator, epoch - 3000, 6000)  # straddles an epoch boundary
    assert lines(generator, epoch - 1000, 2000) == whole[2000:4000]
    assert lines(EventGenerator(SMALL, shard=0), epoch + 10, 5) == whole[3010:3015]


def test_same_inputs_give_identical_bytes_in_another_process() -> None:
    digest = hashlib.sha256(
        render_ndjson(seed=11, shard=2, first_seq=12_345, count=3000, start_ms=START_MS + 12_345_678,
                      max_users=20_000, max_products=5_000)
    ).hexdigest()
    code = (
        "import hashlib; from clickstream.workers.generator import render_ndjson; "
        "print(hashlib.sha256(render_ndjson(seed=11, shard=2, first_seq=12_345, count=3000, "
        f"start_ms={START_MS + 12_345_678}, max_users=20_000, max_products=5_000)).hexdigest())"
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


def test_timestamps_are_the_models_event_time_from_the_start_in_position_order(generator: EventGenerator) -> None:
    events = [json.loads(x) for x in lines(generator, 0, 3000)]
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps) and stamps[0] >= "2026-01-01T00:00:00.000Z"
    assert [e["seq"] for e in events[:3]] == [0, 1, 2]
    model = generator.behaviour.events(0, 3000)
    assert stamps == [str(np.datetime64(int(t), "ms")) + "Z" for t in model.time_ms]


@pytest.mark.parametrize("first", ["2026-01-01T00:00:00", "2026-03-14T23:59:00", "9999-12-14T00:00:00",
                                   "9999-12-31T00:00:00"])
def test_event_times_are_stamped_exactly_across_spans_of_days_up_to_the_year_9999(first: str) -> None:
    from clickstream.limits import MAX_TIMESTAMP_MS
    from clickstream.workers.encode import _IN_MINUTE, MINUTE_PREFIX_BYTES, _stamp_minutes

    start = int(np.datetime64(first, "ms").astype(np.int64))
    times = np.sort(np.random.default_rng(1).integers(start, min(start + 20 * 86_400_000, MAX_TIMESTAMP_MS + 1),
                                                      5000))
    for block in (times[:1], times[:2500], times):  # within a day, within a span, over a span's edge
        minute, in_minute = np.empty(block.size, f"V{MINUTE_PREFIX_BYTES}"), np.empty(block.size, _IN_MINUTE.dtype)
        _stamp_minutes(minute, in_minute, block)  # the encoder's two timestamp fields
        stamped = [bytes(m) + bytes(s) for m, s in zip(minute, in_minute, strict=True)]
        assert stamped == [(str(np.datetime64(int(t), "ms")) + "Z").encode() for t in block]


def test_users_live_in_real_cities_and_emails_are_unique(generator: EventGenerator) -> None:
    from clickstream.workers.catalog import Catalog

    catalog = Catalog.build(SMALL, generator.catalog.cities, with_names=True)
    records: list[dict[str, Any]] = [catalog.user_record(u, START_MS) for u in range(catalog.n_users)]
    assert len({r["email"] for r in records}) == len(records)
    cities = {(c.name, c.country_code) for c in catalog.cities}
    assert all((r["city"], r["country"]) in cities for r in records)
    assert ("Tokyo", "JP") in cities or ("Shanghai", "CN") in cities
    assert all(r["last_active"] is None or r["registration_date"] <= r["last_active"] <= "2026-01-01"
               for r in records)
    assert all((r["order_count"] == 0) == (r["total_spent"] == 0) for r in records)
    assert all(1 <= len(r["preferences"]) <= 4 for r in records)
