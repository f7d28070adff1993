"""Arrow batches built from the generator's arrays carry exactly what the NDJSON rows carry."""

from __future__ import annotations

from typing import Any

import pytest

from clickstream.schema import INTERACTION_FIELDS
from clickstream.workers.generator import EventGenerator
from clickstream.workers.model import ModelConfig

pa = pytest.importorskip("pyarrow", reason="pyarrow not installed: pip install -e '.[spark]'")
pa_json = pytest.importorskip("pyarrow.json")

from clickstream.workers.arrow import interaction_arrow_schema, render_arrow  # noqa: E402


@pytest.fixture(scope="module")
def generator() -> EventGenerator:
    # A non-zero shard: ids mix the shard in, and shard 0 would hide a missing shard term.
    return EventGenerator(ModelConfig(seed=11, max_users=20_000, max_products=5_000), shard=3)


def parsed_ndjson(generator: EventGenerator, first: int, count: int) -> Any:  # a pyarrow.Table
    data = generator.render(first, count).tobytes()
    options = pa_json.ParseOptions(explicit_schema=interaction_arrow_schema())
    return pa_json.read_json(pa.py_buffer(data), parse_options=options)


def test_schema_is_sparks_arrow_schema_for_the_ddl() -> None:
    schema = interaction_arrow_schema()
    assert schema.names == [name for name, *_ in INTERACTION_FIELDS]
    assert all(field.nullable for field in schema)
    assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert schema.field("session_event_index").type == pa.int32()
    assert schema.field("seq").type == pa.int64()


def test_arrow_equals_the_parsed_ndjson_column_by_column_across_an_epoch(generator: EventGenerator) -> None:
    # 60,000 events straddling the first boundary of event-time epochs.
    behaviour = generator.behaviour
    boundary = behaviour.first_position(behaviour.e0 + 1)
    first, count = boundary - min(30_000, boundary), 60_000
    batch = render_arrow(generator, first, count)
    expected = parsed_ndjson(generator, first, count)
    assert batch.schema.equals(interaction_arrow_schema())
    assert batch.num_rows == count
    for name in batch.schema.names:
        assert batch.column(name).equals(expected.column(name).combine_chunks()), name
    # Every kind of value occurs, so the comparison covers nulls, purchases and direct sessions.
    assert batch.column("duration").null_count and batch.column("quantity").null_count
    assert batch.column("referrer").null_count
    assert max(batch.column("revenue").to_pylist()) > 0


def test_arrow_ranges_are_random_access(generator: EventGenerator) -> None:
    whole = render_arrow(generator, 1000, 5000)
    part = render_arrow(generator, 3000, 1000)
    assert part.equals(whole.slice(2000, 1000))
