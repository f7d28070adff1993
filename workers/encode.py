"""Events to NDJSON bytes, a block at a time, with no Python code per event.

Every line of a stream has the same length (`RowLayout.row_bytes`): each field's bytes come from a
pre-rendered fragment table or from digit arithmetic, copied into fixed columns with numpy fancy
indexing. Values shorter than their column are padded with spaces (JSON whitespace between tokens),
so every line is still one valid JSON object. A fixed width is what makes three things cheap:
filling rows column by column (about 20x faster than a dict and a JSON library per event), a
shared-memory ring of whole rows with no length prefixes, and stamping the timestamp in place at
a known column when a row leaves the server (`stamp_timestamps`).

Fields appear in `clickstream.schema.INTERACTION_FIELDS` order; fields that depend on one thing only
(the user, the product, the session's device and referrer) are copied as one fragment each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import ujson

from ..limits import MAX_TIMESTAMP_MS
from ..schema import INTERACTION_FIELDS
from .behaviour import Events
from .catalog import Catalog
from .model import (
    CART,
    CATEGORIES,
    CLICK,
    DEVICE_PROFILES,
    INTERACTION_TYPES,
    PURCHASE,
    REFERRERS,
    SEGMENTS,
    VIEW,
    WISHLIST,
    device_info,
)
from .rng import derive_key, mix64, mix64_in_place

TIMESTAMP_PLACEHOLDER = b"1970-01-01T00:00:00.000Z"
TIMESTAMP_BYTES = len(TIMESTAMP_PLACEHOLDER)
SEQ_DIGITS = 15  # 31 years at a million events per second
USER_DIGITS = 8  # Catalog.user_id: "u" and 8 digits
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
SPACE, ZERO = ord(" "), ord("0")


def _json_fragment(pairs: list[tuple[str, object]]) -> bytes:
    """`"k":v,"k":v` with ujson's escaping (names like "Sao Paulo" with accents stay UTF-8)."""
    return b",".join(
        _json(key) + b":" + _json(value) for key, value in pairs
    )


def _json(value: object) -> bytes:
    return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False).encode()


def _pad_table(fragments: list[bytes]) -> np.ndarray:
    """Fragments as rows of one uint8 array, space-padded to the longest."""
    width = max(len(f) for f in fragments)
    table = np.full((len(fragments), width), SPACE, dtype=np.uint8)
    for i, fragment in enumerate(fragments):
        table[i, : len(fragment)] = np.frombuffer(fragment, dtype=np.uint8)
    return table


@dataclass(frozen=True)
class Column:
    start: int
    width: int

    @property
    def stop(self) -> int:
        return self.start + self.width


# The timestamp is the first field of every row, so the server can stamp rows without knowing the layout.
TIMESTAMP_COLUMN = Column(len(b'{"timestamp":"'), TIMESTAMP_BYTES)


class RowLayout:
    """Where each field lives in a row; built from the catalog, identical in every process."""

    def __init__(self, catalog: Catalog) -> None:
        # A user's fields are three small columns (id digits, segment, city), not one fragment per user:
        # a table of 100,000 user fragments (11 MB) missed the cache on every row and cost more than all
        # the other columns together; these tables stay cached.
        self.segment_fragments = _pad_table([_json(s) for s in SEGMENTS])
        self.place_fragments = _pad_table(
            [b'"country":' + _json(city.country_code) + b',"city":' + _json(city.name) for city in catalog.cities]
        )
        self.product_fragments = _product_fragments(catalog)
        self.session_fragments = _pad_table(
            [
                _json_fragment([("referrer", referrer), ("device_type", device), ("browser", browser),
                                ("device_info", device_info(device, browser)), ("os", os_name)])
                for referrer, _share in REFERRERS
                for device, browser, os_name, _s in DEVICE_PROFILES
            ]
        )
        self.kind_fragments, revenue_offset, order_offset = _kind_fragments()
        self.profiles = len(DEVICE_PROFILES)
        template = _Template()
        self._lay_out(template, revenue_offset, order_offset)
        self.template = np.frombuffer(b"".join(template.parts), dtype=np.uint8).copy()
        self.columns = template.columns
        self.row_bytes = template.position
        self.timestamp = self.columns["timestamp"]
        assert self.timestamp == TIMESTAMP_COLUMN, "the timestamp must stay the first field"
        # Whole rows with the segment and session fragments in place, one per (segment, session) pair
        # (520 rows, 300 KB): one gather of whole rows into the row buffer, which is contiguous, writes the
        # literal bytes and both fields in one pass. A fragment gathered into a column is two passes (a gather,
        # a strided copy), and these two fields cost more than the whole-row copy.
        self.row_templates = _combinations(
            self.template, [(self.columns["user_segment"], self.segment_fragments),
                            (self.columns["session"], self.session_fragments)])
        self.fields = _row_fields(self.columns, self.row_bytes)

    def _lay_out(self, t: _Template, revenue_offset: int, order_offset: int) -> None:
        """The template: literal bytes everywhere, placeholders where values go. Built by walking the
        schema's field order, so the encoder and clickstream.schema cannot drift apart."""
        grouped = {
            "country": ("place", self.place_fragments),
            "product_id": ("product", self.product_fragments),
            "referrer": ("session", self.session_fragments),
        }
        skip = {"duration", "quantity", "revenue", "order_id", "city", "category", "price", "page_url", "device_type",
                "browser", "device_info", "os"}
        t.literal(b"{")
        for index, (name, *_rest) in enumerate(INTERACTION_FIELDS):
            if name in skip:
                continue
            if index:
                t.literal(b",")
            if name in grouped:
                group, table = grouped[name]
                t.slot(group, table.shape[1])
            elif name == "interaction_type":
                t.slot("kind", self.kind_fragments.shape[1])
                t.columns["revenue"] = Column(t.columns["kind"].start + revenue_offset, REVENUE_WIDTH)
                t.columns["order_id"] = Column(t.columns["kind"].start + order_offset, ORDER_ID_WIDTH)
            else:
                t.literal(ujson.dumps(name).encode() + b":")
                self._lay_out_value(t, name)
        t.literal(b"}\n")

    def _lay_out_value(self, t: _Template, name: str) -> None:
        quoted = {"timestamp": (b'"', TIMESTAMP_BYTES), "interaction_id": (b'"', 16), "session_id": (b'"', 16),
                  "user_id": (b'"u', USER_DIGITS)}
        if name in quoted:
            opening, width = quoted[name]
            t.literal(opening)
            t.slot(name, width, TIMESTAMP_PLACEHOLDER if name == "timestamp" else b" ")
            t.literal(b'"')
        elif name == "user_segment":
            t.slot(name, self.segment_fragments.shape[1])
        else:
            t.slot(name, {"seq": SEQ_DIGITS, "session_event_index": 2}[name])


def _row_fields(columns: dict[str, Column], row_bytes: int) -> np.dtype:
    """A structured dtype over a whole row: each column, and the parts of columns written separately, as a
    named opaque field (fields may overlap). `rows.view(fields)[:, 0][name] = values` writes a column in one
    call: a slice, a view and an index per column cost ~1.8 us more each, at some 15 columns a block."""
    spans = {name: (col.start, col.width) for name, col in columns.items()}
    timestamp, seq, revenue, order = columns["timestamp"], columns["seq"], columns["revenue"], columns["order_id"]
    spans |= {
        "minute": (timestamp.start, MINUTE_PREFIX_BYTES),
        "in_minute": (timestamp.start + MINUTE_PREFIX_BYTES, timestamp.width - MINUTE_PREFIX_BYTES),
        "seq_high": (seq.start, seq.width - 4), "seq_low": (seq.stop - 4, 4),
        "dollars": (revenue.stop - 7, 4), "point_cents": (revenue.stop - 3, 3),
        "order_quote": (order.start, 1), "order_hex": (order.start + 1, 16), "order_suffix": (order.start + 17, 4),
    }
    names = list(spans)
    return np.dtype({"names": names, "formats": [f"V{spans[n][1]}" for n in names],
                     "offsets": [spans[n][0] for n in names], "itemsize": row_bytes})


def _combinations(template: np.ndarray, parts: list[tuple[Column, np.ndarray]]) -> np.ndarray:
    """`template` rows with the fragments of `parts` in place, one row per combination of their rows (row
    i1 * n2 + i2 for two parts), as one opaque item per row."""
    sizes = [table.shape[0] for _column, table in parts]
    rows = np.tile(template, (int(np.prod(sizes)), 1))
    for which, (column, table) in zip(np.indices(sizes).reshape(len(sizes), -1), parts, strict=True):
        rows[:, column.start : column.start + table.shape[1]] = table[which]
    return rows.view(f"V{template.size}").ravel()


class _Template:
    """A row's bytes as they are laid out, and the columns that values fill."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.columns: dict[str, Column] = {}
        self.position = 0

    def literal(self, data: bytes) -> None:
        self.parts.append(data)
        self.position += len(data)

    def slot(self, name: str, width: int, filler: bytes = b" ") -> None:
        self.columns[name] = Column(self.position, width)
        self.parts.append(filler * width if len(filler) == 1 else filler)
        self.position += width


def _product_fragments(catalog: Catalog) -> np.ndarray:
    category_json = [_json(c) for c in CATEGORIES]
    fragments = []
    for product, (category, cents) in enumerate(
        zip(catalog.product_category.tolist(), catalog.product_price_cents.tolist(), strict=True)
    ):
        pid, name = catalog.product_id(product), CATEGORIES[category]
        price = f"{cents // 100}.{cents % 100:02d}"
        fragments.append(
            f'"product_id":"{pid}","category":'.encode() + category_json[category]
            + f',"price":{price},"page_url":"/products/{name}/{pid}"'.encode()
        )
    return _pad_table(fragments)


def _kind_fragments() -> tuple[np.ndarray, int, int]:
    """The interaction's own fields (type, duration, quantity, revenue, order_id) as one fragment per
    combination that can occur (304 of them), and where revenue and order_id start in one. Revenue shows 0.00
    and order_id null here; both are written for purchases only."""
    type_width = max(len(_json(t)) for t in INTERACTION_TYPES)
    texts = [
        b'"interaction_type":' + _json(INTERACTION_TYPES[kind]).ljust(type_width)
        + b',"duration":' + (str(duration).encode() if duration else b"null").rjust(4)
        + b',"quantity":' + (str(quantity).encode() if quantity else b"null").rjust(4)
        + b',"revenue":' + b"0.00".rjust(REVENUE_WIDTH)
        + b',"order_id":' + b"null".ljust(ORDER_ID_WIDTH)
        for kind, duration, quantity in _kind_combinations()
    ]
    order_offset = len(texts[0]) - ORDER_ID_WIDTH
    return _pad_table(texts), order_offset - len(b',"order_id":') - REVENUE_WIDTH, order_offset


class Encoder:
    """Renders `Events` into fixed-width NDJSON rows."""

    # Rows are filled in sub-blocks that fit in the CPU cache: each field is a separate pass over the
    # rows, and 4096 rows of ~600 bytes (2.4 MB) stay cached between passes (65,536-row blocks ran 40 % slower).
    SUB_BLOCK_ROWS = 4096

    def __init__(self, catalog: Catalog, shard: int) -> None:
        self.layout = RowLayout(catalog)
        self.row_bytes = self.layout.row_bytes
        seed = catalog.config.seed
        # 0-d arrays rather than numpy scalars: cheaper ufunc operands (see rng._S30)
        self._shard_bits = np.array(np.uint64(shard) << np.uint64(48))
        self._interaction_key = np.array(derive_key(seed, 0x1D))
        self._session_key = np.array(derive_key(seed, 0x5E))
        self._sessions = np.array(self.layout.session_fragments.shape[0], dtype=np.intp)
        self._profiles = np.array(self.layout.profiles, dtype=np.intp)
        cols = self.layout.columns
        # The kind fragments by key (type * 301 + duration + quantity, 1,505 rows, 173 KB) rather than an
        # index table then the 304 fragments: one gather per event instead of two.
        self._kind_by_key = self.layout.kind_fragments[_kind_index_table()]
        # Small integer fields come from tables too: one copy instead of a digit loop.
        self._index_table = _number_table(100, cols["session_event_index"].width)
        self._scratch = np.empty(self.SUB_BLOCK_ROWS * self.row_bytes, dtype=np.uint8)

    def new_buffer(self, rows: int) -> np.ndarray:
        """An uninitialised (rows, row_bytes) uint8 buffer: `encode` writes every byte of each row (the
        whole-row template gather comes first), so filling it with the template was a wasted pass over the
        rows for every `encode(out=None)` (the server's seeded streams)."""
        return np.empty((rows, self.row_bytes), dtype=np.uint8)

    def encode(self, events: Events, out: np.ndarray | None = None) -> np.ndarray:
        """Rows for `events`, shape (n, row_bytes) uint8, written into `out` when given: any (>= n, row_bytes)
        uint8 array; every byte of its first n rows is written."""
        n = len(events)
        rows = self.new_buffer(n) if out is None else out[:n]
        for start in range(0, n, self.SUB_BLOCK_ROWS):
            stop = min(n, start + self.SUB_BLOCK_ROWS)
            # A block of one sub-block (the generator's usual case) is not sliced: slicing 15 arrays cost ~9 us.
            block = events if stop - start == n else events.slice(start, stop)
            self._encode_block(block, rows[start:stop])
        return rows

    # Ids: a bijective hash of (shard, position) is unique for every event of every shard. Public because
    # the Arrow renderer (arrow.py) must derive exactly the same ones.
    def interaction_ids(self, events: Events) -> np.ndarray:
        """The uint64 behind each event's `interaction_id` (a hash of its shard and position)."""
        return mix64((events.seq | self._shard_bits) ^ self._interaction_key)

    def session_ids(self, events: Events) -> np.ndarray:
        """The uint64 behind each event's `session_id` (a hash of its shard and its session's key, < 2**48)."""
        return mix64((events.session_key | self._shard_bits) ^ self._session_key)

    def _both_ids(self, events: Events) -> np.ndarray:
        """(2, n) uint64: `interaction_ids` then `session_ids`, each half contiguous, mixed in one pass and
        rendered in one gather (half the numpy calls of two; ~20 us a block)."""
        ids = np.empty((2, len(events)), dtype=np.uint64)
        for half, keys, salt in ((0, events.seq, self._interaction_key), (1, events.session_key, self._session_key)):
            np.bitwise_or(keys, self._shard_bits, out=ids[half])
            ids[half] ^= salt
        return mix64_in_place(ids)

    def _template_row(self, events: Events) -> np.ndarray:
        """(segment * sessions + referrer * profiles + profile) per event, in place in one intp array."""
        # intp before multiplying: int8 * 13 overflowed for the last referrers (and silently picked row 0)
        row = events.segment.astype(np.intp)
        row *= self._sessions
        session_row = events.referrer.astype(np.intp)
        session_row *= self._profiles
        row += session_row
        row += events.profile
        return row

    def _encode_block(self, events: Events, rows: np.ndarray) -> None:
        layout, cols, scratch = self.layout, self.layout.columns, self._scratch
        layout.row_templates.take(self._template_row(events), out=rows.view(layout.row_templates.dtype)[:, 0],
                                  mode="clip")
        row = rows.view(layout.fields)[:, 0]
        _put(row, "place", layout.place_fragments, events.city, scratch)
        _user_digits(row, events.user)
        _put(row, "product", layout.product_fragments, events.product, scratch)
        _put(row, "kind", self._kind_by_key, _kind_key(events), scratch)
        _put(row, "session_event_index", self._index_table, events.session_event_index, scratch)
        _hex16_pair(row, self._both_ids(events))
        _counter_digits(row, events.seq, cols["seq"].width)
        purchases = np.flatnonzero(events.revenue_cents)
        if purchases.size:
            _money(row, events.revenue_cents[purchases], purchases)
            _order_ids(row, events.order_index[purchases], purchases)
        _stamp_minutes(row["minute"], row["in_minute"], events.time_ms)


REVENUE_WIDTH = 7
ORDER_ID_WIDTH = 21  # "<session id>-<2-digit order number in the session>"


def _kind_combinations() -> list[tuple[int, int, int]]:
    """(type, duration_s, quantity) that events can have; 0 means null."""
    combos = [(VIEW, seconds, 0) for seconds in range(5, 301)] + [(CLICK, 0, 0)]
    combos += [(CART, 0, q) for q in (1, 2, 3)] + [(PURCHASE, 0, q) for q in (1, 2, 3)] + [(WISHLIST, 0, 0)]
    return combos


# Integer operands of ufuncs as 0-d arrays of the operand's dtype: a Python int or numpy scalar operand is
# converted on every call, ~0.8 us (1.8 vs 1.0 us a call).
_KIND_STRIDE = np.array(301, dtype=np.int16)
_I32_100, _I32_10000 = np.array(100, dtype=np.int32), np.array(10_000, dtype=np.int32)


def _kind_key(events: Events) -> np.ndarray:
    """type * 301 + duration + quantity per event (each event has at most one of the two), in place in one
    int16 array (keys stay below 5 * 301; int16 arithmetic beat intp by ~2 ns/event)."""
    key = events.interaction_type.astype(np.int16)
    key *= _KIND_STRIDE
    key += events.duration_s
    key += events.quantity
    return key


def _kind_index_table() -> np.ndarray:
    """Maps type * 301 + duration + quantity (each event has at most one of the two) to its fragment row."""
    table = np.zeros(5 * 301, dtype=np.intp)
    for row, (kind, seconds, quantity) in enumerate(_kind_combinations()):
        table[kind * 301 + seconds + quantity] = row
    return table


def _number_table(count: int, width: int, zero_pad: bool = False) -> np.ndarray:
    """0 .. count - 1 as right-aligned text `width` bytes wide, padded with zeros or spaces."""
    return _pad_table([str(i).encode().rjust(width, b"0" if zero_pad else b" ") for i in range(count)])


def _put(row: np.ndarray, name: str, table: np.ndarray, index: np.ndarray, scratch: np.ndarray) -> None:
    """row[name] = table[index] (`row`: rows viewed as `RowLayout.fields`), one memcpy per row, through
    `scratch` (uint8, >= len(index) x width).

    Viewing each fragment as one opaque `V<width>` item makes numpy copy it with a single memcpy
    instead of byte by byte: about 1.6x faster than 2-D fancy indexing. The gather goes into contiguous
    scratch, then one strided copy: `np.take` into a strided `out` makes three passes (numpy copies `out`
    into a contiguous temporary, gathers into it, writes it back), 1.3-1.5x slower.

    Gathers here and elsewhere call the array's `take` method: the `np.take` function's dispatch costs
    ~2 us a call on this VM (the method: 0.8 us), and a block makes about a dozen gathers.
    """
    width = table.shape[1]
    items = table.view(f"V{width}").ravel()
    row[name] = items.take(index, out=scratch[: index.size * width].view(f"V{width}"), mode="clip")


# Four characters per table item: 16-bit halves of ids in hex, 4-digit groups of numbers.
_HEX4 = _pad_table([f"{i:04x}".encode() for i in range(1 << 16)]).view("V4").ravel()
_DEC4_ZERO = _number_table(10_000, 4, zero_pad=True).view("V4").ravel()
_DEC4_SPACE = _number_table(10_000, 4).view("V4").ravel()


def _hex16_pair(row: np.ndarray, ids: np.ndarray) -> None:
    """The interaction and session ids (`ids`, (2, n)) in hex: four table lookups per id, one gather for
    both, then copied into the rows as one 16-byte item per id."""
    digits = hex16_digits(ids).view("V16").reshape(2, -1)
    row["interaction_id"], row["session_id"] = digits


def hex16_digits(values: np.ndarray) -> np.ndarray:
    """16 lower-case hex digits of each uint64, most significant first, as one contiguous uint8 array."""
    out = np.empty((values.size, 4), dtype="V4")
    _HEX4.take(values.astype(">u8").view(">u2").reshape(-1, 4), out=out, mode="clip")
    return out.view(np.uint8).ravel()


def order_id_bytes(session_ids: np.ndarray, order_index: np.ndarray) -> np.ndarray:
    """`"<16 hex digits of the session id>-<order number, 2 digits>"` per purchase, (n, ORDER_ID_WIDTH) uint8."""
    n = session_ids.size
    text = np.empty((n, ORDER_ID_WIDTH), dtype=np.uint8)
    text[:, 0] = text[:, -1] = ord('"')
    text[:, 1:17] = hex16_digits(session_ids).reshape(n, 16)
    text[:, 17] = ord("-")
    text[:, 18] = ZERO + order_index // 10
    text[:, 19] = ZERO + order_index % 10
    return text


def _counter_digits(row: np.ndarray, seq: np.ndarray, width: int) -> None:
    """Right-aligned decimal positions, leading spaces.

    Positions in a block are consecutive (`Events` is a contiguous range), so a run of them that shares all
    but the last four digits takes those from a contiguous slice of a 10,000-entry table (no gather), and
    renders the other digits once: 2.5x faster than a gather and a diff to find the runs.
    """
    n = seq.size
    if n == 0:
        return
    first = int(seq[0])
    assert int(seq[-1]) - first == n - 1, "positions of a block must be consecutive"
    high, low_digits = row["seq_high"], row["seq_low"]
    at = 0
    while at < n:
        prefix, low = divmod(first + at, 10_000)
        run = min(n - at, 10_000 - low)
        low_table = _DEC4_ZERO if prefix else _DEC4_SPACE
        low_digits[at : at + run] = low_table[low : low + run]
        text = (str(prefix) if prefix else "").rjust(width - 4).encode()
        high[at : at + run] = np.frombuffer(text, dtype=high.dtype)
        at += run


def _user_digits(row: np.ndarray, user: np.ndarray) -> None:
    """`u` + 8 zero-padded digits, as Catalog.user_id renders them: two table items per user, gathered
    contiguously and copied as one 8-byte item."""
    halves = np.empty((user.size, 2), dtype=np.intp)
    high, low = _divmod(user, _I32_10000)
    halves[:, 0], halves[:, 1] = high, low
    digits = _DEC4_ZERO.take(halves, mode="clip")
    row["user_id"] = digits.view("V8")[:, 0]


def _money(row: np.ndarray, cents: np.ndarray, at: np.ndarray) -> None:
    """`dddd.cc`, right-aligned (revenue never reaches $10,000: at most $2,000 x 3), into rows `at`.

    Written as two opaque items per row (dollars, `.cc`) through fields of the row, as is the order id:
    2-D fancy indexing (`rows[at, a:b] = text`) made the purchase path twice as slow (58 vs 27 ns/event).
    """
    dollars, rest = _divmod(cents, _I32_100)
    row["dollars"][at] = _DEC4_SPACE.take(dollars, mode="clip")  # clip: 9999 for $10,000 or more
    row["point_cents"][at] = _POINT_CENTS.take(rest, mode="clip")


def _order_ids(row: np.ndarray, order_index: np.ndarray, at: np.ndarray) -> None:
    """`order_id_bytes` into rows `at`, its hex digits copied from the row's own session id (already
    rendered) instead of rendering them again."""
    row["order_quote"][at] = _QUOTE
    row["order_hex"][at] = row["session_id"][at]
    row["order_suffix"][at] = _ORDER_SUFFIX.take(order_index, mode="clip")


_QUOTE = np.frombuffer(b'"', dtype="V1")
_DIGIT_PAIRS = np.array([[ZERO + i // 10, ZERO + i % 10] for i in range(100)], dtype=np.uint8)
_POINT_CENTS = _pad_table([f".{i:02d}".encode() for i in range(100)]).view("V3").ravel()
# `-NN"` closing an order id; as `order_id_bytes` writes it for every int8 order index (no clipping at 99)
_ORDER_SUFFIX = _pad_table([bytes([ord("-"), ZERO + i // 10, ZERO + i % 10, ord('"')]) for i in range(128)]).view(
    "V4").ravel()


# ---- timestamps: stamped when a row leaves, at a fixed column ----


def render_timestamps(epoch_ms: np.ndarray) -> np.ndarray:
    """ISO-8601 UTC with milliseconds and Z, shape (n, 24) uint8. Vectorised civil-from-days."""
    ms = epoch_ms.astype(np.int64)
    days, ms_of_day = np.divmod(ms, 86_400_000)
    # Howard Hinnant's civil_from_days, valid for the proleptic Gregorian calendar.
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    seconds, millis = np.divmod(ms_of_day, 1000)
    hour, rest = np.divmod(seconds, 3600)
    minute, second = np.divmod(rest, 60)
    out = np.empty((ms.size, TIMESTAMP_BYTES), dtype=np.uint8)
    out[:] = np.frombuffer(b"0000-00-00T00:00:00.000Z", dtype=np.uint8)
    out[:, 0:2] = _DIGIT_PAIRS[year // 100]
    out[:, 2:4] = _DIGIT_PAIRS[year % 100]
    out[:, 5:7] = _DIGIT_PAIRS[month]
    out[:, 8:10] = _DIGIT_PAIRS[day]
    out[:, 11:13] = _DIGIT_PAIRS[hour]
    out[:, 14:16] = _DIGIT_PAIRS[minute]
    out[:, 17:19] = _DIGIT_PAIRS[second]
    out[:, 20] = ZERO + millis // 100
    out[:, 21:23] = _DIGIT_PAIRS[millis % 100]
    return out


MS_PER_DAY, MS_PER_MINUTE = 86_400_000, 60_000
_I64_MS_PER_MINUTE = np.array(MS_PER_MINUTE, dtype=np.int64)
# Split 16 + 8 bytes, not at the seconds (17 + 7): numpy gathers and copies items of 8 and 16 bytes with
# fixed-size moves, other sizes with a memmove call each (timestamps 35 -> 22 ns/event alone).
MINUTE_PREFIX_BYTES = len(b"YYYY-MM-DDTHH:MM")
# ":SS.mmmZ" for each millisecond of a minute: 480 KB, built once
_IN_MINUTE = _pad_table([f":{ms // 1000:02d}.{ms % 1000:03d}Z".encode() for ms in range(MS_PER_MINUTE)]).view(
    f"V{TIMESTAMP_BYTES - MINUTE_PREFIX_BYTES}").ravel()


# Minute tables cover aligned spans of days, so a stream renders one per span instead of one per day and
# pair of days it crosses (a table per block's own days cost 8 % of generation with a small store, whose
# blocks each cover hours). A span's table also holds the next day: a block that starts in the span's last
# day still finds all its minutes there.
DAYS_PER_MINUTE_TABLE = 16
LAST_DAY = MAX_TIMESTAMP_MS // MS_PER_DAY  # 9999-12-31: a span's table stops there (4-digit years)


def _minute_table(first_day: int, last_day: int) -> tuple[np.ndarray, int]:
    """A table of `_minute_prefixes` holding days `first_day` .. `last_day`, and the day it starts at."""
    span_start = first_day - first_day % DAYS_PER_MINUTE_TABLE
    span_end = min(span_start + DAYS_PER_MINUTE_TABLE, LAST_DAY)
    if last_day <= span_end:
        return _minute_prefixes(span_start, span_end), span_start
    return _minute_prefixes(first_day, last_day), first_day  # a block over more days: its own table


DATE_BYTES = len(b"YYYY-MM-DD")
_TIME_OF_DAY = _pad_table([f"T{m // 60:02d}:{m % 60:02d}".encode() for m in range(1440)])  # "THH:MM"


@lru_cache(maxsize=8)
def _minute_prefixes(first_day: int, last_day: int) -> np.ndarray:
    """`YYYY-MM-DDTHH:MM` of each minute of days `first_day` .. `last_day` (since 1970), one opaque item
    per minute (24 KB a day): each day's date beside the 1,440 times of day (rendering every minute's
    calendar took 10 ms for 17 days, this under 1 ms)."""
    days = np.arange(first_day, last_day + 1, dtype=np.int64)
    text = np.empty((days.size, 1440, MINUTE_PREFIX_BYTES), dtype=np.uint8)
    text[:, :, :DATE_BYTES] = render_timestamps(days * MS_PER_DAY)[:, None, :DATE_BYTES]
    text[:, :, DATE_BYTES:] = _TIME_OF_DAY
    return text.view(f"V{MINUTE_PREFIX_BYTES}").ravel()


def _stamp_minutes(minute_field: np.ndarray, in_minute_field: np.ndarray, epoch_ms: np.ndarray) -> None:
    """Timestamps as two table lookups per row: the minute (date and time to the minute, from the table of the
    span of days the block falls in, `_minute_table`) and the millisecond in the minute, into the two opaque fields.
    Rendering the calendar per row cost a third of generation when every event of a block had its own
    second; a date copied per block, then second and millisecond lookups, made one more division and one
    more pass over the rows than this."""
    if len(epoch_ms) == 0:
        return
    table, table_day = _minute_table(int(epoch_ms.min()) // MS_PER_DAY, int(epoch_ms.max()) // MS_PER_DAY)
    since_table_day = epoch_ms - np.array(table_day * MS_PER_DAY, dtype=epoch_ms.dtype)
    minute, in_minute = _divmod(since_table_day, _I64_MS_PER_MINUTE)
    # Gathers into new contiguous arrays, then copies: `take` into a strided `out` makes three passes.
    minute_field[:] = table.take(minute, mode="clip")
    in_minute_field[:] = _IN_MINUTE.take(in_minute, mode="clip")


def _divmod(values: np.ndarray, divisor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.divmod(values, divisor)` of an integer array by a 0-d one, faster: numpy's divmod does not use the
    division by a constant that `floor_divide` does (38 vs 22 us for 4096 int64)."""
    quotient = values // divisor
    rest = quotient * divisor
    np.subtract(values, rest, out=rest)
    return quotient, rest


_EPOCH, _ONE_MS = datetime(1970, 1, 1, tzinfo=UTC), timedelta(milliseconds=1)


def read_timestamp_ms(row: np.ndarray, column: Column = TIMESTAMP_COLUMN) -> int:
    """The timestamp of one rendered row, in epoch milliseconds (years 1970-9999).

    `datetime.fromisoformat` (which reads the `Z`) and exact integer division by a millisecond timedelta: ~2x
    faster than parsing with np.datetime64 (3.1 vs 5.7 us), once per batch in the server."""
    parsed = datetime.fromisoformat(bytes(row[column.start : column.stop]).decode())
    return (parsed - _EPOCH) // _ONE_MS


def stamp_timestamps(rows: np.ndarray, epoch_ms: np.ndarray, column: Column = TIMESTAMP_COLUMN) -> None:
    """Write each row's timestamp in place (the server's `clock=wall`), with the encoder's two lookups
    (`_stamp_minutes`): ~9 us for 256 rows, whether or not they cross a second (a per-second prefix did
    5 us, but a batch that crossed one rendered every row's calendar: 79 us)."""
    field = rows[:, column.start : column.stop]
    minute = field[:, :MINUTE_PREFIX_BYTES].view(f"V{MINUTE_PREFIX_BYTES}")[:, 0]
    _stamp_minutes(minute, field[:, MINUTE_PREFIX_BYTES:].view(_IN_MINUTE.dtype)[:, 0], epoch_ms)
