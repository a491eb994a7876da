"""Avro schema parsing for the registry: validation, the stored (canonical) form and the normalized form.

We build a small model of our own instead of using fastavro's parsed dict, because the registry must keep
docs, properties, aliases and field order, and compat.py needs named types resolved to shared objects
(recursion). fastavro still parses the result as a final check and provides the decoder form.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import fastavro

MAX_SCHEMA_BYTES = 1 << 20
MAX_SCHEMA_DEPTH = 100

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_RESERVED = {
    "record": {"type", "name", "namespace", "doc", "aliases", "fields"},
    "enum": {"type", "name", "namespace", "doc", "aliases", "symbols", "default"},
    "fixed": {"type", "name", "namespace", "doc", "aliases", "size"},
    "array": {"type", "items"},
    "map": {"type", "values"},
}
_FIELD_RESERVED = {"name", "type", "default", "doc", "order", "aliases"}
_LOGICAL_KEYS = ("logicalType", "precision", "scale")
_ORDERS = ("ascending", "descending", "ignore")
_INT_RANGE = {"int": 1 << 31, "long": 1 << 63}
# logical type -> underlying types it may annotate (fixed sizes checked separately)
_LOGICAL_BASES = {
    "decimal": {"bytes", "fixed"}, "uuid": {"string", "fixed"}, "date": {"int"},
    "time-millis": {"int"}, "time-micros": {"long"}, "timestamp-millis": {"long"},
    "timestamp-micros": {"long"}, "timestamp-nanos": {"long"}, "local-timestamp-millis": {"long"},
    "local-timestamp-micros": {"long"}, "local-timestamp-nanos": {"long"}, "duration": {"fixed"},
}


class SchemaError(ValueError):
    """Invalid schema; message goes into the 42201 body."""


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT = _NoDefault()  # a field or enum without a default (JSON null is a real default)


@dataclass(frozen=True)
class Reference:
    """Confluent's {"name", "subject", "version"}: name is the full name the schema text uses."""

    name: str
    subject: str
    version: int


@dataclass(eq=False)
class Node:
    """One Avro type. Named types are shared objects, so recursive schemas form cycles."""

    kind: str  # a primitive name, or record/enum/fixed/array/map/union
    props: dict = field(default_factory=dict)  # user properties (logicalType etc. included)
    logical: str | None = None  # a *valid* logical type; invalid ones are ignored (Avro spec)
    precision: int = 0
    scale: int = 0
    name: str | None = None  # full name of a named type
    namespace: str | None = None
    doc: str | None = None
    aliases: tuple[str, ...] = ()  # full names
    fields: list[Field] = field(default_factory=list)
    symbols: tuple[str, ...] = ()
    default: object = NO_DEFAULT  # enum default
    size: int = 0
    items: Node | None = None  # array items, map values
    branches: tuple[Node, ...] = ()
    is_error: bool = False

    @property
    def short(self) -> str:
        return (self.name or self.kind).rpartition(".")[2]


@dataclass(eq=False)
class Field:
    name: str
    type: Node
    default: object = NO_DEFAULT
    doc: str | None = None
    order: str = "ascending"
    aliases: tuple[str, ...] = ()
    props: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ParsedSchema:
    """A validated schema: canonical is what the registry stores and returns, parsed feeds fastavro."""

    schema_type: str
    canonical: str
    normalized: str
    references: tuple[Reference, ...]
    parsed: object
    fullname: str | None
    root: Node = field(repr=False, default=None)  # our model, for compat.py
    names: Mapping[str, Node] = field(repr=False, default_factory=dict)  # every named type, refs included

    def identity(self, normalize: bool = False) -> str:
        """Key for "same schema": the canonical (or normalized) text plus the references."""
        refs = sorted(set(self.references), key=_ref_key) if normalize else self.references
        form = self.normalized if normalize else self.canonical
        return _dumps([form, [[r.name, r.subject, r.version] for r in refs]])


def _ref_key(r: Reference) -> tuple:
    return (r.name, r.subject, r.version)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def parse_schema(text: str, schema_type: str = "AVRO", references: Sequence[Reference] = (),
                 resolve: Callable[[Reference], ParsedSchema] | None = None) -> ParsedSchema:
    if (schema_type or "AVRO").upper() != "AVRO":
        raise SchemaError(f"Unsupported schema type {schema_type!r}; only AVRO is supported")
    if not isinstance(text, str):
        raise SchemaError("Schema must be a string")
    if len(text) > MAX_SCHEMA_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SCHEMA_BYTES:
        raise SchemaError(f"Schema is larger than the limit of {MAX_SCHEMA_BYTES} bytes")
    _check_depth(text)
    try:
        js = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as e:
        raise SchemaError(f"Invalid schema JSON: {e}") from None
    refs = tuple(references)
    names: dict[str, Node] = {}
    fa_named: dict = {}
    for ref in refs:
        if not (isinstance(ref.name, str) and isinstance(ref.subject, str) and isinstance(ref.version, int)):
            raise SchemaError(f"Invalid schema reference {ref!r}")
        if resolve is None:
            raise SchemaError(f"Cannot resolve reference {ref.name!r}")
        dep = resolve(ref)
        names.update(dep.names)
        if isinstance(dep.parsed, dict):
            fa_named.update(dep.parsed.get("__named_schemas", {}))
    known = frozenset(names)
    parser = _Parser(names)
    root = parser.parse(js, None, "")
    parser.check_defaults()
    try:
        parsed = fastavro.parse_schema(_canon(root, None, set(known), for_fastavro=True),
                                       named_schemas=dict(fa_named))
    except Exception as e:  # fastavro raises SchemaParseException, UnknownType, and plain errors
        raise SchemaError(f"Invalid Avro schema: {e}") from None
    canonical, normalized = _dumps(_canon(root, None, set(known))), _dumps(_norm(root, set(known)))
    try:
        canonical.encode()
    except UnicodeEncodeError:
        raise SchemaError("Schema contains a lone surrogate (\\u escape) that is not valid Unicode") from None
    return ParsedSchema(
        schema_type="AVRO",
        canonical=canonical,
        normalized=normalized,
        references=refs,
        parsed=parsed,
        fullname=root.name,
        root=root,
        names=dict(names),
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal[:40]} is out of range")
    return value


def _check_depth(text: str) -> None:
    """Bracket depth of the raw text, strings skipped, so a deep document never reaches json.loads."""
    depth = 0
    for m in _TOKENS.finditer(text):
        c = m.group()[0]
        if c in "[{":
            depth += 1
            if depth > MAX_SCHEMA_DEPTH:
                raise SchemaError(f"Schema JSON is nested deeper than {MAX_SCHEMA_DEPTH} levels")
        elif c in "]}":
            depth -= 1


def _valid_name(name: object) -> bool:
    return isinstance(name, str) and _NAME.match(name) is not None


def _valid_space(space: str) -> bool:
    return all(_valid_name(p) for p in space.split("."))


class _Parser:
    def __init__(self, names: dict[str, Node]):
        self.names = names
        self.pending: list[tuple[Field, str]] = []  # defaults checked once every type is complete

    def parse(self, js: object, space: str | None, where: str) -> Node:
        if isinstance(js, str):
            return self._lookup(js, space, where)
        if isinstance(js, list):
            return self._union(js, space, where)
        if not isinstance(js, dict):
            raise SchemaError(f"Invalid schema at {where or '/'}: expected a string, object or array")
        kind = js.get("type")
        if not isinstance(kind, str):
            raise SchemaError(f"Invalid schema at {where or '/'}: \"type\" must be a string, got {_dumps(kind)}")
        if kind in PRIMITIVES:
            node = Node(kind, props=_props(js, {"type"}))
            _set_logical(node)
            return node
        if kind in ("record", "error", "enum", "fixed"):
            return self._named(js, kind, space, where)
        if kind in ("array", "map"):
            key = "items" if kind == "array" else "values"
            if key not in js:
                raise SchemaError(f"Invalid {kind} at {where or '/'}: missing \"{key}\"")
            return Node(kind, props=_props(js, _RESERVED[kind]), items=self.parse(js[key], space, f"{where}/{key}"))
        return self._lookup(kind, space, where)

    def _lookup(self, name: str, space: str | None, where: str) -> Node:
        if name in PRIMITIVES:
            return Node(name)
        candidates = [name] if "." in name else ([f"{space}.{name}"] if space else []) + [name]
        for full in candidates:
            if full in self.names:
                return self.names[full]
        raise SchemaError(f"Unknown type {name!r} at {where or '/'}")

    def _union(self, js: list, space: str | None, where: str) -> Node:
        branches, seen = [], set()
        for i, b in enumerate(js):
            node = self.parse(b, space, f"{where}/{i}")
            if node.kind == "union":
                raise SchemaError(f"Nested union at {where}/{i}: unions may not immediately contain unions")
            key = node.name or node.kind
            if key in seen:
                raise SchemaError(f"Duplicate type {key!r} in union at {where or '/'}")
            seen.add(key)
            branches.append(node)
        return Node("union", branches=tuple(branches))

    def _named(self, js: dict, kind: str, space: str | None, where: str) -> Node:
        name = js.get("name")
        if not isinstance(name, str):
            raise SchemaError(f"Invalid {kind} at {where or '/'}: \"name\" must be a string")
        if "." in name:
            own_space, _, short = name.rpartition(".")
        else:
            short, declared = name, js.get("namespace")
            if declared is not None and not isinstance(declared, str):
                raise SchemaError(f"Invalid namespace {_dumps(declared)} at {where or '/'}")
            own_space = space if declared is None else declared
        own_space = own_space or None
        if not _valid_name(short) or short in PRIMITIVES or (own_space and not _valid_space(own_space)):
            raise SchemaError(f"Invalid name {name!r} at {where or '/'}")
        full = f"{own_space}.{short}" if own_space else short
        if full in self.names:
            raise SchemaError(f"Can't redefine: {full}")
        doc = js.get("doc")
        if doc is not None and not isinstance(doc, str):
            raise SchemaError(f"Invalid doc of {full}: must be a string")
        node = Node("record" if kind == "error" else kind, name=full, namespace=own_space, doc=doc,
                    aliases=_aliases(js.get("aliases"), own_space, full, qualify=True),
                    props=_props(js, _RESERVED["record" if kind == "error" else kind]), is_error=kind == "error")
        self.names[full] = node
        if kind == "enum":
            self._enum(node, js)
        elif kind == "fixed":
            size = js.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise SchemaError(f"Invalid fixed {full}: \"size\" must be a non-negative integer")
            node.size = size
            _set_logical(node)
        else:
            self._fields(node, js, where)
        return node

    def _enum(self, node: Node, js: dict) -> None:
        symbols = js.get("symbols")
        if not isinstance(symbols, list):
            raise SchemaError(f"Invalid enum {node.name}: \"symbols\" must be an array")
        for s in symbols:
            if not _valid_name(s):
                raise SchemaError(f"Invalid enum symbol {_dumps(s)} in {node.name}")
        if len(set(symbols)) != len(symbols):
            raise SchemaError(f"Duplicate enum symbol in {node.name}")
        node.symbols = tuple(symbols)
        if "default" in js:
            if js["default"] not in node.symbols:
                raise SchemaError(f"The enum default {_dumps(js['default'])} of {node.name} is not a symbol")
            node.default = js["default"]

    def _fields(self, node: Node, js: dict, where: str) -> None:
        fields = js.get("fields")
        if not isinstance(fields, list):
            raise SchemaError(f"Invalid record {node.name}: \"fields\" must be an array")
        seen = set()
        for i, f in enumerate(fields):
            at = f"{where}/fields/{i}"
            if not isinstance(f, dict):
                raise SchemaError(f"Invalid field at {at}: expected an object")
            name = f.get("name")
            if not _valid_name(name):
                raise SchemaError(f"Invalid field name {_dumps(name)} in {node.name}")
            if name in seen:
                raise SchemaError(f"Duplicate field name {name!r} in {node.name}")
            seen.add(name)
            if "type" not in f:
                raise SchemaError(f"Field {name!r} of {node.name} has no type")
            doc, order = f.get("doc"), f.get("order", "ascending")
            if doc is not None and not isinstance(doc, str):
                raise SchemaError(f"Invalid doc of field {name!r} in {node.name}: must be a string")
            if order not in _ORDERS:
                raise SchemaError(f"Invalid order {_dumps(order)} of field {name!r} in {node.name}")
            fld = Field(name, self.parse(f["type"], node.namespace, f"{at}/type"), f.get("default", NO_DEFAULT),
                        doc, order, _aliases(f.get("aliases"), None, name, qualify=False),
                        _props(f, _FIELD_RESERVED))
            node.fields.append(fld)
            if fld.default is not NO_DEFAULT:
                self.pending.append((fld, node.name))

    def check_defaults(self) -> None:
        for fld, record in self.pending:
            if not _valid_default(fld.type, fld.default):
                raise SchemaError(f"Invalid default for field {fld.name} in {record}: "
                                  f"{_dumps(fld.default)} not a {_dumps(_canon(fld.type, None, set()))}")


def _props(js: dict, reserved: set) -> dict:
    return {k: v for k, v in js.items() if k not in reserved}


def _aliases(value: object, space: str | None, owner: str, qualify: bool) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SchemaError(f"Invalid aliases of {owner}: must be an array of names")
    out = []
    for a in value:
        ok = isinstance(a, str) and (_valid_space(a) if qualify else _valid_name(a))
        if not ok:
            raise SchemaError(f"Invalid alias {_dumps(a)} of {owner}")
        out.append(f"{space}.{a}" if qualify and space and "." not in a else a)
    return tuple(out)


def _set_logical(node: Node) -> None:
    """Record a logical type only when valid; otherwise it stays a plain property (Avro spec)."""
    lt = node.props.get("logicalType")
    if lt not in _LOGICAL_BASES or node.kind not in _LOGICAL_BASES[lt]:
        return
    if lt == "decimal":
        p, s = node.props.get("precision"), node.props.get("scale", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (p, s)):
            return
        if p <= 0 or s < 0 or s > p:
            return
        if node.kind == "fixed" and (node.size == 0 or p > math.floor((8 * node.size - 1) * math.log10(2))):
            return  # more digits than the fixed can hold
        node.precision, node.scale = p, s
    elif (lt == "uuid" and node.kind == "fixed" and node.size != 16) or (lt == "duration" and node.size != 12):
        return
    node.logical = lt


def _valid_default(node: Node, v: object) -> bool:
    k = node.kind
    if k == "null":
        return v is None
    if k == "boolean":
        return isinstance(v, bool)
    if k in _INT_RANGE:
        return isinstance(v, int) and not isinstance(v, bool) and -_INT_RANGE[k] <= v < _INT_RANGE[k]
    if k in ("float", "double"):
        return isinstance(v, int | float) and not isinstance(v, bool)
    if k in ("string", "bytes"):
        return isinstance(v, str)
    if k == "fixed":
        return isinstance(v, str) and len(v) == node.size
    if k == "enum":
        return v in node.symbols
    if k == "array":
        return isinstance(v, list) and all(_valid_default(node.items, x) for x in v)
    if k == "map":
        return isinstance(v, dict) and all(_valid_default(node.items, x) for x in v.values())
    if k == "record":
        return isinstance(v, dict) and all(
            _valid_default(f.type, v[f.name]) if f.name in v else f.default is not NO_DEFAULT for f in node.fields)
    # union: Avro 1.12 (AVRO-3649) accepts a default matching any branch, not only the first
    return any(_valid_default(b, v) for b in node.branches)


def _relative(full: str, space: str | None) -> str:
    """A full name as written inside namespace `space` (Java Avro: short when the namespace matches)."""
    ns, _, short = full.rpartition(".")
    return short if ns and ns == space and short not in PRIMITIVES else full


def _sorted_props(node_props: dict, skip: tuple = ()) -> dict:
    return {k: node_props[k] for k in sorted(node_props) if k not in skip}


def _canon(node: Node, space: str | None, seen: set, for_fastavro: bool = False) -> object:
    """Java Avro's Schema.toString() layout (Confluent's canonicalString); user properties sorted so that
    key order does not matter. for_fastavro drops ignored logical types so fastavro ignores them too."""
    props = _sorted_props(node.props, _LOGICAL_KEYS if for_fastavro and node.logical is None else ())
    k = node.kind
    if k == "union":
        return [_canon(b, space, seen, for_fastavro) for b in node.branches]
    if k in ("array", "map"):
        key = "items" if k == "array" else "values"
        return {"type": k, key: _canon(node.items, space, seen, for_fastavro), **props}
    if node.name is None:
        return {"type": k, **props} if props else k
    if node.name in seen:
        return _relative(node.name, space)
    seen.add(node.name)
    out: dict = {"type": "error" if node.is_error else k, "name": node.short}
    if node.namespace != space:
        out["namespace"] = node.namespace or ""
    if node.doc is not None:
        out["doc"] = node.doc
    if k == "record":
        out["fields"] = [_canon_field(f, node.namespace, seen, for_fastavro) for f in node.fields]
    elif k == "enum":
        out["symbols"] = list(node.symbols)
        if node.default is not NO_DEFAULT:
            out["default"] = node.default
    else:
        out["size"] = node.size
    out.update(props)
    if node.aliases:
        out["aliases"] = [_relative(a, node.namespace) for a in node.aliases]
    return out


def _canon_field(f: Field, space: str | None, seen: set, for_fastavro: bool) -> dict:
    out: dict = {"name": f.name, "type": _canon(f.type, space, seen, for_fastavro)}
    if f.doc is not None:
        out["doc"] = f.doc
    if f.default is not NO_DEFAULT:
        out["default"] = f.default
    if f.order != "ascending":
        out["order"] = f.order
    if f.aliases:
        out["aliases"] = list(f.aliases)
    out.update(_sorted_props(f.props))
    return out


def _norm(node: Node, seen: set, space: str | None = None) -> object:
    """Confluent's normalize=true form: full names, no namespaces, fixed key order, sorted aliases/props."""
    k = node.kind
    if k == "union":
        return [_norm(b, seen, space) for b in node.branches]
    if k in ("array", "map"):
        key = "items" if k == "array" else "values"
        return {"type": k, key: _norm(node.items, seen, space), **_sorted_props(node.props)}
    if node.name is None:
        if node.logical is None and not node.props:
            return k
        return {"type": k, **_logical(node), **_sorted_props(node.props, _LOGICAL_KEYS if node.logical else ())}
    if node.name in seen:
        return node.name
    seen.add(node.name)
    out: dict = {"name": node.name, "type": "error" if node.is_error else k}
    if node.namespace is None and space is not None:
        out["namespace"] = ""  # else a reader would put the short name into the enclosing namespace
    if k == "enum":
        out["symbols"] = list(node.symbols)
    elif k == "fixed":
        out["size"] = node.size
        out.update(_logical(node))
    else:
        out["fields"] = [_norm_field(f, seen, node.namespace) for f in node.fields]
    if node.doc:
        out["doc"] = node.doc
    if node.aliases:
        out["aliases"] = sorted(node.aliases)
    if node.default is not NO_DEFAULT:
        out["default"] = node.default
    out.update(_sorted_props(node.props, _LOGICAL_KEYS if node.logical else ()))
    return out


def _norm_field(f: Field, seen: set, space: str | None) -> dict:
    out: dict = {"name": f.name, "type": _norm(f.type, seen, space)}
    if f.order != "ascending":
        out["order"] = f.order
    if f.doc is not None:
        out["doc"] = f.doc
    if f.aliases:
        out["aliases"] = sorted(f.aliases)
    if f.default is not NO_DEFAULT:
        out["default"] = f.default
    out.update(_sorted_props(f.props))
    return out


def _logical(node: Node) -> dict:
    if node.logical is None:
        return {}
    out: dict = {"logicalType": node.logical}
    if node.logical == "decimal":
        out["precision"] = node.precision
        if node.scale:
            out["scale"] = node.scale
    return out
