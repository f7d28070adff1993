"""The one definition of an interaction event's fields, as JSON Schema and as a Spark DDL string.

The encoder (`workers/encode.py`) writes the fields in exactly this order; the server's `/schema`
endpoint and the Spark connector read them from here, so the three can never disagree.
"""

from __future__ import annotations

from typing import Any, Final

# (name, JSON type, Spark SQL type, nullable, description), in the order every line carries them.
# Fields that depend on one thing only (the user, the product, the session's device) sit together:
# the encoder copies each such group from one pre-rendered fragment.
INTERACTION_FIELDS: Final[tuple[tuple[str, str, str, bool, str], ...]] = (
    ("timestamp", "string", "TIMESTAMP", False, "event time, ISO-8601 UTC with milliseconds and Z"),
    ("seq", "integer", "BIGINT", False, "position of the event in its stream (shard)"),
    ("interaction_id", "string", "STRING", False, "unique id of the event"),
    ("session_id", "string", "STRING", False, "id of the session the event belongs to"),
    ("session_event_index", "integer", "INT", False, "1 for a session's first event"),
    ("interaction_type", "string", "STRING", False, "view, click, add_to_cart, purchase or wishlist"),
    ("duration", "integer", "INT", True, "seconds on the product page (views only, else null)"),
    ("quantity", "integer", "INT", True, "items (add_to_cart and purchase only, else null)"),
    ("revenue", "number", "DOUBLE", False, "price * quantity for purchases, else 0"),
    ("order_id", "string", "STRING", True,
     "the order a purchase belongs to (the items of one checkout share it), else null"),
    ("user_id", "string", "STRING", False, "user, as served by /stream/users"),
    ("user_segment", "string", "STRING", False, "casual, regular, power or premium"),
    ("country", "string", "STRING", False, "ISO 3166 alpha-2 country code of the user"),
    ("city", "string", "STRING", False, "city of the user (a real city of that country)"),
    ("product_id", "string", "STRING", False, "product of the catalog"),
    ("category", "string", "STRING", False, "product category, lower case"),
    ("price", "number", "DOUBLE", False, "unit price of the product"),
    ("page_url", "string", "STRING", False, "/products/<category>/<product_id>"),
    ("referrer", "string", "STRING", True, "where the session came from (null: direct)"),
    ("device_type", "string", "STRING", False, "mobile, desktop or tablet"),
    ("browser", "string", "STRING", False, "browser of the session"),
    ("device_info", "string", "STRING", False, "the session's device type and browser, e.g. \"mobile - Chrome\""),
    ("os", "string", "STRING", False, "device model and operating system of the session, e.g. \"iPhone; iOS 18\""),
)

INTERACTION_TYPES: Final[tuple[str, ...]] = ("view", "click", "add_to_cart", "purchase", "wishlist")


def interaction_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one interaction line."""
    properties: dict[str, Any] = {}
    for name, json_type, _spark, nullable, description in INTERACTION_FIELDS:
        prop: dict[str, Any] = {"type": [json_type, "null"] if nullable else json_type, "description": description}
        if name == "timestamp":
            prop["format"] = "date-time"
        if name == "interaction_type":
            prop["enum"] = list(INTERACTION_TYPES)
        properties[name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "interaction",
        "type": "object",
        "properties": properties,
        "required": [name for name, *_ in INTERACTION_FIELDS],
        "additionalProperties": False,
    }


def interaction_spark_ddl() -> str:
    """Spark DDL string, usable with `from_json` or `.schema(...)`."""
    return ", ".join(f"{name} {spark}" for name, _j, spark, _n, _d in INTERACTION_FIELDS)
