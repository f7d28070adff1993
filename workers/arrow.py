"""Events to Arrow columns, with exactly the values the NDJSON rows carry, and no JSON in between.

Parsing our own NDJSON back with `pyarrow.json` cost about 5.5 µs a row and was most of what a Spark
reader spent; building the columns from `Behaviour.events` directly is several times faster. The values
are the encoder's (`encode.py`), derived the same way: ids from the same keyed hash of (shard, position),
strings from the same catalog and model tables, the model's event time at millisecond precision.
`tests/test_arrow.py` checks that a batch equals the parsed NDJSON of the same range, column by column.

Types are Spark's Arrow types for the schema's SQL types (INT int32, BIGINT int64, DOUBLE float64,
TIMESTAMP timestamp('us', 'UTC'), STRING string), every field nullable, as Spark requires of batches a
Python data source returns. pyarrow is only installed with the `spark` extra, so it is imported lazily:
the server and the workers import this module without it.
"""

from __future__ import annotations

import weakref
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..limits import DEFAULT_FUNNEL, DEFAULT_START_MS
from ..schema import INTERACTION_FIELDS
from .encode import hex16_digits, order_id_bytes
from .generator import EventGenerator, seeded_generator
from .model import CATEGORIES, DEVICE_PROFILES, INTERACTION_TYPES, REFERRERS, SEGMENTS, device_info

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["arrow_available", "interaction_arrow_schema", "render_arrow", "render_arrow_seeded"]


@lru_cache(maxsize=1)
def arrow_available() -> bool:
    """Whether pyarrow can be imported here (the server offers `format=arrow` only then)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def interaction_arrow_schema() -> pa.Schema:
    """The schema of `render_arrow`'s batches: Spark's Arrow types for `INTERACTION_FIELDS`, all nullable."""
    import pyarrow as pa

    types = {
        "INT": pa.int32(),
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        "STRING": pa.string(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    }
    # Nullable even where a value is never null: Spark's schema from a DDL string is all nullable, and it
    # rejects batches whose Arrow schema differs from its own in anything, nullability included.
    return pa.schema([pa.field(name, types[spark], nullable=True) for name, _j, spark, _n, _d in INTERACTION_FIELDS])


class _Lookups:
    """Per-catalog value tables that rows index into: built once per generator (about 0.2 s), then reused."""

    def __init__(self, generator: EventGenerator) -> None:
        import pyarrow as pa

        catalog = generator.catalog
        # Users are functions, not tables (10M of them would cost ~200 MB of strings here): user ids are
        # built per batch from digits, the per-user strings are taken by the event's segment and city.
        self.segment: pa.Array = pa.array(SEGMENTS, pa.string())
        self.country: pa.Array = pa.array([city.country_code for city in catalog.cities], pa.string())
        self.city: pa.Array = pa.array([city.name for city in catalog.cities], pa.string())
        product_ids = [catalog.product_id(p) for p in range(catalog.n_products)]
        category = pa.array(catalog.product_category.astype(np.int32))
        category_names = pa.array(CATEGORIES, pa.string())
        self.product: dict[str, pa.Array] = {
            "product_id": pa.array(product_ids, pa.string()),
            "category": category_names.take(category),
            # cents / 100 is the double nearest the decimal the NDJSON prints, as a JSON parser reads it.
            "price": pa.array(catalog.product_price_cents / 100),
            "page_url": pa.array(
                [f"/products/{CATEGORIES[c]}/{pid}" for c, pid in zip(catalog.product_category.tolist(), product_ids,
                                                                      strict=True)],
                pa.string(),
            ),
        }
        # Indexed like the encoder's session fragments: referrer * len(DEVICE_PROFILES) + profile.
        pairs = [(referrer, profile) for referrer, _share in REFERRERS for profile in DEVICE_PROFILES]
        self.session: dict[str, pa.Array] = {
            "referrer": pa.array([referrer for referrer, _p in pairs], pa.string()),
            "device_type": pa.array([profile[0] for _r, profile in pairs], pa.string()),
            "browser": pa.array([profile[1] for _r, profile in pairs], pa.string()),
            "device_info": pa.array([device_info(profile[0], profile[1]) for _r, profile in pairs], pa.string()),
            "os": pa.array([profile[2] for _r, profile in pairs], pa.string()),
        }
        self.interaction_type: pa.Array = pa.array(INTERACTION_TYPES, pa.string())


# Keyed by the generator, weakly: the server's GeneratorPool drops generators it no longer uses, and their
# tables (a few MB) must go with them.
_LOOKUPS: weakref.WeakKeyDictionary[EventGenerator, _Lookups] = weakref.WeakKeyDictionary()


def _lookups(generator: EventGenerator) -> _Lookups:
    lookups = _LOOKUPS.get(generator)
    if lookups is None:
        lookups = _LOOKUPS[generator] = _Lookups(generator)
    return lookups


def _hex_ids(values: np.ndarray) -> pa.StringArray:
    """16 lower-case hex digits per uint64 as a string array, built from buffers (no Python strings)."""
    import pyarrow as pa

    n = values.size
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(hex16_digits(values)))


def _user_ids(user: np.ndarray) -> pa.StringArray:
    """`u` + 8 zero-padded digits per user (Catalog.user_id), built from buffers."""
    import pyarrow as pa

    n = user.size
    digits = np.empty((n, 9), dtype=np.uint8)
    digits[:, 0] = ord("u")
    value = user.astype(np.int64)
    for column in range(8, 0, -1):
        value, digit = np.divmod(value, 10)
        digits[:, column] = ord("0") + digit
    offsets = np.arange(0, 9 * n + 1, 9, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(digits.ravel()))


def _order_ids(session_ids: np.ndarray, order_index: np.ndarray) -> pa.StringArray:
    """Purchases' order ids as the NDJSON writes them (encode.order_id_bytes, unquoted); null elsewhere."""
    import pyarrow as pa

    n = session_ids.size
    bought = np.flatnonzero(order_index > 0)
    text = order_id_bytes(session_ids[bought], order_index[bought])[:, 1:-1]
    lengths = np.zeros(n, dtype=np.int32)
    lengths[bought] = text.shape[1]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    valid = np.packbits(order_index > 0, bitorder="little")
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(text).ravel()),
                                       pa.py_buffer(valid))


def render_arrow(generator: EventGenerator, first_seq: int, count: int) -> pa.RecordBatch:
    """Positions first_seq .. first_seq + count - 1 as one record batch of `interaction_arrow_schema()`.

    Equal, value for value, to parsing `generator.render(first_seq, count)` with that schema. Not
    thread-safe for one generator (like `render`: it reuses the epoch buffers).
    """
    import pyarrow as pa

    events = generator.behaviour.events(first_seq, count)
    lookups = _lookups(generator)
    ids = generator.encoder
    product = pa.array(events.product.astype(np.int32, copy=False))
    session = pa.array(events.referrer.astype(np.int32) * len(DEVICE_PROFILES) + events.profile)
    city = pa.array(events.city.astype(np.int32, copy=False))
    columns: dict[str, pa.Array] = {
        "timestamp": pa.array(events.time_ms * 1000, pa.timestamp("us", tz="UTC")),
        "seq": pa.array(events.seq.astype(np.int64)),
        "interaction_id": _hex_ids(ids.interaction_ids(events)),
        "session_id": _hex_ids(ids.session_ids(events)),
        "session_event_index": pa.array(events.session_event_index.astype(np.int32)),
        "interaction_type": lookups.interaction_type.take(pa.array(events.interaction_type.astype(np.int32))),
        # 0 is the model's "not applicable", which the NDJSON writes as null.
        "duration": pa.array(events.duration_s.astype(np.int32), mask=events.duration_s == 0),
        "quantity": pa.array(events.quantity.astype(np.int32), mask=events.quantity == 0),
        "revenue": pa.array(events.revenue_cents / 100),
        "order_id": _order_ids(ids.session_ids(events), events.order_index),
        "user_id": _user_ids(events.user),
        "user_segment": lookups.segment.take(pa.array(events.segment.astype(np.int32))),
        "country": lookups.country.take(city),
        "city": lookups.city.take(city),
    }
    for name, table in lookups.product.items():
        columns[name] = table.take(product)
    for name, table in lookups.session.items():
        columns[name] = table.take(session)
    schema = interaction_arrow_schema()
    return pa.RecordBatch.from_arrays([columns[name] for name in schema.names], schema=schema)


def render_arrow_seeded(*, seed: int, shard: int, first_seq: int, count: int, start_ms: int = DEFAULT_START_MS,
                        max_users: int = 100_000, max_products: int = 50_000, funnel: str = DEFAULT_FUNNEL,
                        store_countries: tuple[str, ...] = ()) -> pa.RecordBatch:
    """`render_arrow` of a seeded stream with a per-process cached generator (for Spark executors)."""
    generator = seeded_generator(seed=seed, shard=shard, start_ms=start_ms, max_users=max_users,
                                 max_products=max_products, funnel=funnel, store_countries=store_countries)
    return render_arrow(generator, first_seq, count)
