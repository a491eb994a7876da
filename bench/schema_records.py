"""Avro records for the schema phase: one realistic order schema, and pools of distinct records that
encode to exactly 100 B or 1 KiB in Confluent's wire format (magic byte 0, 4-byte schema id, body).

The schema has what real value schemas have (strings, longs, an int, an enum, a nested record, an
array of records, nullable unions) and no logical types, so the bare decode loop and the broker decode
the same thing (the broker's validator skips logical-type conversion; a plain loop would not).
A record is filled with random content, then its nullable `note` is padded until the framed value has
the requested size.
"""

from __future__ import annotations

import io
import json
import random
import string
from functools import cache

from fastavro import parse_schema, schemaless_writer

ORDER_SCHEMA = json.dumps({
    "type": "record", "name": "Order", "namespace": "bench.shop",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "customer_id", "type": "long"},
        {"name": "created_ms", "type": "long"},
        {"name": "status", "type": {"type": "enum", "name": "Status",
                                    "symbols": ["NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"]}},
        {"name": "shipping", "type": {"type": "record", "name": "Address", "fields": [
            {"name": "street", "type": "string"}, {"name": "city", "type": "string"},
            {"name": "postcode", "type": "string"}, {"name": "country", "type": "string"}]}},
        {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
            {"name": "sku", "type": "string"}, {"name": "quantity", "type": "int"},
            {"name": "price_cents", "type": "long"}]}}},
        {"name": "coupon", "type": ["null", "string"], "default": None},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
})
HEADER = 5  # magic byte + schema id
POOL_RECORDS = 4096
CITIES = ("Lisbon", "Oslo", "Porto", "Lyon", "Leeds", "Turin", "Graz", "Cork", "Brno", "Ghent")
STATUSES = ("NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")


@cache
def parsed_schema() -> dict:
    return parse_schema(json.loads(ORDER_SCHEMA))


def encode(record: dict) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parsed_schema(), record)
    return out.getvalue()


def _text(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits + " ", k=n))


def _record(rng: random.Random, size: int) -> dict:
    """Random content, one item per 25 bytes of target size (some are dropped to fit): a 1 KiB record
    keeps ~40 items and ~400 characters of note, a 100 B one 2-3 items."""
    return {
        "order_id": f"ord-{rng.randrange(10**9):09d}",
        "customer_id": rng.randrange(1, 10**7),
        "created_ms": 1_700_000_000_000 + rng.randrange(10**10),
        "status": rng.choice(STATUSES),
        "shipping": {"street": f"{rng.randrange(1, 999)} {_text(rng, 6)} St", "city": rng.choice(CITIES),
                     "postcode": f"{rng.randrange(10**5):05d}", "country": rng.choice(("PT", "NO", "FR", "GB"))},
        "items": [{"sku": f"SKU-{rng.randrange(10**6):06d}", "quantity": rng.randrange(1, 20),
                   "price_cents": rng.randrange(99, 10**6)} for _ in range(max(1, size // 25))],
        "coupon": f"SAVE{rng.randrange(5, 50)}" if rng.random() < 0.3 else None,
        "note": None,
    }


def _sized(rng: random.Random, size: int) -> bytes:
    """Encode one record whose framed form is exactly `size` bytes: pad the note (a null note is one
    byte, "" two, and the length prefix grows with the text, so search downwards); when no length
    lands on `size` exactly, drop an item and try again."""
    record = _record(rng, size)
    pad = _text(rng, size)
    while True:
        record["note"] = None
        gap = size - HEADER - len(encode(record))
        if gap == 0:
            return encode(record)
        for n in range(gap - 1, -1, -1):
            record["note"] = pad[:n]
            body = encode(record)
            if len(body) + HEADER == size:
                return body
            if len(body) + HEADER < size:
                break
        if len(record["items"]) <= 1:
            raise ValueError(f"records of {size} B are too small for the bench schema")
        record["items"].pop()


@cache
def bodies(size: int) -> tuple[bytes, ...]:
    """POOL_RECORDS distinct Avro bodies (no header) that frame to `size` bytes, the same in every run."""
    rng = random.Random(size)
    return tuple(_sized(rng, size) for _ in range(POOL_RECORDS))


def framed(size: int, schema_id: int) -> tuple[bytes, ...]:
    """The pool in Confluent's wire format for `schema_id`."""
    head = b"\0" + schema_id.to_bytes(4, "big")
    return tuple(head + body for body in bodies(size))
