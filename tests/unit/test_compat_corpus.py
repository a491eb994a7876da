"""The compatibility corpus against compat.reader_can_read, the `avro` package's checker, and real data:
every pair's expected answer comes from the Avro spec; the two cross-checks keep those answers honest."""

import datetime
import io
import uuid
from decimal import Decimal
from functools import cache

import avro.schema
import fastavro
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from keystream.registry.compat import reader_can_read
from keystream.registry.schema import Node, ParsedSchema, parse_schema
from tests.fixtures.compat_corpus import AVRO_PKG, CORPUS, FASTAVRO

ERROR_TYPES = ("READER_FIELD_MISSING_DEFAULT_VALUE", "TYPE_MISMATCH", "MISSING_UNION_BRANCH",
               "MISSING_ENUM_SYMBOLS", "NAME_MISMATCH", "FIXED_SIZE_MISMATCH")
VARIANTS = 4  # samples per writer: variant k picks union branch k and enum symbol k (mod their count)
MAX_DEPTH = 3  # recursive types: arrays/maps empty and unions null below this depth

params = pytest.mark.parametrize("writer,reader,expected,note", CORPUS, ids=[c[3] for c in CORPUS])


@cache
def parsed(text: str) -> ParsedSchema:
    return parse_schema(text)


def test_corpus_shape():
    notes = [c[3] for c in CORPUS]
    assert len(CORPUS) >= 110
    assert len(set(notes)) == len(notes), "notes name the pairs; keep them unique"
    assert sum(c[2] for c in CORPUS) >= 40 and sum(not c[2] for c in CORPUS) >= 40


@params
def test_reader_can_read(writer, reader, expected, note):
    messages = reader_can_read(parsed(reader), parsed(writer))
    assert (messages == []) == expected, messages
    for m in messages:
        assert m.startswith(ERROR_TYPES) and " at /" in m, m


@params
@pytest.mark.filterwarnings("ignore::avro.errors.IgnoredLogicalType")
def test_avro_package_checker(writer, reader, expected, note):
    result = ReaderWriterCompatibilityChecker().get_compatibility(avro.schema.parse(reader), avro.schema.parse(writer))
    avro_says = result.compatibility is SchemaCompatibilityType.compatible
    assert avro_says == (expected != (AVRO_PKG in note)), f"avro package: {result.messages}"


@params
def test_sample_data(writer, reader, expected, note):
    """Compatible: every sample resolves. Incompatible: some targeted sample fails to resolve, unless the
    note says fastavro cannot show it (then they all resolve, which the note documents)."""
    w, r = parsed(writer), parsed(reader)
    outcomes = []
    for k in range(VARIANTS):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, w.parsed, sample(w.root, k))
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, w.parsed, r.parsed)
            outcomes.append(None)
        except Exception as e:  # fastavro raises SchemaResolutionError and others on a mismatch
            outcomes.append(e)
    if expected or FASTAVRO in note:
        assert outcomes == [None] * VARIANTS
    else:
        assert any(o is not None for o in outcomes), "no sample showed the incompatibility"


_EPOCH = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
_LOGICAL = {
    "date": lambda n, k: datetime.date(2020, 1, 1) + datetime.timedelta(days=k),
    "time-millis": lambda n, k: datetime.time(1, 2, k),
    "time-micros": lambda n, k: datetime.time(1, 2, k),
    "timestamp-millis": lambda n, k: _EPOCH,
    "timestamp-micros": lambda n, k: _EPOCH,
    "local-timestamp-millis": lambda n, k: _EPOCH.replace(tzinfo=None),
    "local-timestamp-micros": lambda n, k: _EPOCH.replace(tzinfo=None),
    "uuid": lambda n, k: str(uuid.UUID(int=k)),
    "decimal": lambda n, k: Decimal(k + 1).scaleb(-n.scale),
}
_PRIMITIVE = {"null": None, "boolean": True, "int": 7, "long": 1 << 40, "float": 1.5, "double": 2.5}


def sample(node: Node, k: int, depth: int = 0):
    """A deterministic datum for a writer schema; k selects union branches and enum symbols."""
    if node.logical in _LOGICAL:
        return _LOGICAL[node.logical](node, k)
    kind = node.kind
    if kind in _PRIMITIVE:
        return _PRIMITIVE[kind] + k if kind in ("int", "long") else _PRIMITIVE[kind]
    if kind == "string":
        return f"s{k}"
    if kind == "bytes":
        return bytes([k])
    if kind == "fixed":
        return bytes(node.size)
    if kind == "enum":
        return node.symbols[k % len(node.symbols)]
    if kind == "array":
        return [sample(node.items, k, depth + 1)] if depth < MAX_DEPTH else []
    if kind == "map":
        return {"k": sample(node.items, k, depth + 1)} if depth < MAX_DEPTH else {}
    if kind == "record":
        return {f.name: sample(f.type, k, depth + 1) for f in node.fields}
    kinds = [b.kind for b in node.branches]
    branch = node.branches[kinds.index("null") if depth >= MAX_DEPTH and "null" in kinds else k % len(kinds)]
    value = sample(branch, k, depth + 1)
    return (branch.name, value) if branch.kind == "record" else value
