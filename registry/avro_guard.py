"""Bounds on Avro payloads whose decoding fastavro cannot bound by itself.

Measured with fastavro 1.13's Cython `schemaless_reader` on a BytesIO:
- a bytes/string length prefix claiming gigabytes is harmless: BytesIO.read returns what exists and
  fastavro raises EOFError without allocating the claimed size;
- an array whose items encode in zero bytes (null, an empty record, fixed of size 0, a record of only
  such fields) with a block count of 2**40 loops forever appending items (1e6 items took 70 ms), so
  time and memory grow without bound from a payload of a few bytes;
- a recursive schema (record N {next: [null, N]}) with a payload nested 5,000 deep overflows the C
  stack in fastavro's reader and kills the process with SIGSEGV.

So `compile_guard` decides once per schema whether it is dangerous (recursive, or an array of
zero-size items); only for those does the validator run `Guard.check` first: an iterative walk
(no recursion) of the payload's structure that bounds nesting depth and the number of collection
items, and refuses with a clear message. Safe schemas go straight to fastavro.
"""

from __future__ import annotations

from keystream.broker.errors import KafkaError
from keystream.broker.records import read_varint

MAX_DEPTH = 100  # records/arrays/maps open at once; far below where fastavro's C stack overflows
MAX_ITEMS = 1_000_000  # collection items per payload (1e6 zero-size items cost fastavro ~70 ms)
ITEMS_PER_BYTE = 4  # ... and at most 1024 + 4 per payload byte, so a batch's work stays linear in its size

_FIXED_SIZE = {"null": 0, "boolean": 1, "float": 4, "double": 8}
_VARINT = ("int", "long", "enum")
_LENGTH = ("bytes", "string")
_COMPLEX = ("record", "error", "enum", "fixed", "array", "map")


class GuardError(ValueError):
    """The payload exceeds a bound or is malformed; the message says which."""


class _Node:
    """One schema type with named references resolved (cycles allowed)."""

    __slots__ = ("kind", "children", "size", "zero")

    def __init__(self, kind: str):
        self.kind = kind  # null boolean int long float double bytes string fixed enum record array map union
        self.children: list[_Node] = []  # record fields, union branches, or [array items] / [map values]
        self.size = 0  # fixed size
        self.zero = False  # always encodes in zero bytes


_END = object()  # stack marker: a record, array or map closes


def _build(schema, defs: dict) -> _Node:
    """Graph of nodes for a fastavro-parsed schema; `defs` maps full names to definitions (fastavro's
    `__named_schemas`, which also holds the named types of references)."""
    named: dict[str, _Node] = {}
    pending: list[tuple[object, _Node]] = []

    def node_of(s) -> _Node:
        if isinstance(s, list):
            n = _Node("union")
            pending.append((s, n))
            return n
        if isinstance(s, str):
            if s in named:
                return named[s]
            if s in defs:
                return node_of(defs[s])
            if s in _FIXED_SIZE or s in _VARINT or s in _LENGTH:
                return _Node(s)
            raise GuardError(f"unknown Avro type {s!r}")
        kind = s["type"]
        if not isinstance(kind, str) or kind not in _COMPLEX:  # {"type": <type>} with attributes
            return node_of(kind)
        n = _Node("record" if kind == "error" else kind)
        if "name" in s:
            named[s["name"]] = n
        n.size = s.get("size", 0)
        pending.append((s, n))
        return n

    root = node_of(schema)
    while pending:
        s, n = pending.pop()
        if n.kind == "union":
            n.children = [node_of(b) for b in s]
        elif n.kind == "record":
            n.children = [node_of(f["type"]) for f in s["fields"]]
        elif n.kind in ("array", "map"):
            n.children = [node_of(s["items" if n.kind == "array" else "values"])]
    return root


def _mark_zero(nodes: list[_Node]) -> None:
    """Zero-size types: null, fixed(0), records of only those (a fixpoint, so cycles stay non-zero)."""
    for n in nodes:
        n.zero = n.kind == "null" or (n.kind == "fixed" and n.size == 0)
    changed = True
    while changed:
        changed = False
        for n in nodes:
            if not n.zero and n.kind == "record" and all(c.zero for c in n.children):
                n.zero = changed = True


def _all_nodes(root: _Node) -> list[_Node]:
    seen, out, todo = set(), [], [root]
    while todo:
        n = todo.pop()
        if id(n) not in seen:
            seen.add(id(n))
            out.append(n)
            todo.extend(n.children)
    return out


def _recursive(nodes: list[_Node]) -> bool:
    """Whether the type graph has a cycle (only named types can close one)."""
    state: dict[int, int] = {}  # 1 = on the path, 2 = done
    for start in nodes:
        if id(start) in state:
            continue
        stack = [(start, iter(start.children))]
        state[id(start)] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[id(node)] = 2
                stack.pop()
            elif state.get(id(child)) == 1:
                return True
            elif id(child) not in state:
                state[id(child)] = 1
                stack.append((child, iter(child.children)))
    return False


class Guard:
    """Structural pre-walk of payloads under one dangerous schema."""

    def __init__(self, root: _Node, reason: str):
        self.root = root
        self.reason = reason  # why the schema needs the guard (for logs and tests)

    def check(self, buf, pos: int, end: int) -> None:
        """Walk the encoding in buf[pos:end] without recursion; raise GuardError past a bound."""
        max_items = min(MAX_ITEMS, 1024 + ITEMS_PER_BYTE * (end - pos))
        stack: list = [self.root]
        depth = items = 0
        while stack:
            n = stack.pop()
            if n is _END:
                depth -= 1
                continue
            if type(n) is tuple:  # (node, remaining items of the current block) of an array or map
                node, left = n
                if left > 1:
                    stack.append((node, left - 1))
                stack.append(node.children[0])
                if node.kind == "map":
                    stack.append(_KEY)
                continue
            kind = n.kind
            if kind in _FIXED_SIZE or kind == "fixed":
                pos += n.size if kind == "fixed" else _FIXED_SIZE[kind]
            elif kind in _VARINT:
                pos = _skip_varint(buf, pos, end)
            elif kind in _LENGTH:
                length, pos = _read_long(buf, pos, end)
                if length < 0 or length > end - pos:
                    raise GuardError(f"{kind} length {length} exceeds the {end - pos} bytes left")
                pos += length
            elif kind == "union":
                index, pos = _read_long(buf, pos, end)
                if not 0 <= index < len(n.children):
                    raise GuardError(f"union branch {index} does not exist")
                stack.append(n.children[index])
            elif kind == "record":
                depth += 1
                if depth > MAX_DEPTH:
                    raise GuardError(f"payload nests deeper than {MAX_DEPTH} levels")
                stack.append(_END)
                stack.extend(reversed(n.children))
            elif kind == "_block":  # the next block of the array or map below it on the stack
                container = stack.pop()
                count, pos = _read_long(buf, pos, end)
                if count == 0:
                    continue
                if count < 0:
                    count = -count
                    _, pos = _read_long(buf, pos, end)  # the block's size in bytes
                items += count
                if items > max_items:
                    raise GuardError(f"payload holds more than {max_items} collection items")
                stack.append(container)
                stack.append(_BLOCK)
                item = container.children[0]
                # Zero-size array items all consume nothing: walking one checks its depth for all.
                stack.append((container, 1 if item.zero and container.kind == "array" else count))
            else:  # array or map: opens a level, then blocks until a zero count
                depth += 1
                if depth > MAX_DEPTH:
                    raise GuardError(f"payload nests deeper than {MAX_DEPTH} levels")
                stack.append(_END)
                stack.append(n)
                stack.append(_BLOCK)
            if pos > end:
                raise GuardError("payload is truncated")


_KEY = _Node("string")  # a map entry's key
_BLOCK = _Node("_block")


def _read_long(buf, pos: int, end: int) -> tuple[int, int]:
    """Avro's zigzag varint long: the same encoding as Kafka's record varints."""
    try:
        return read_varint(buf, pos, end)
    except KafkaError as e:
        raise GuardError(e.message or "invalid varint") from None


def _skip_varint(buf, pos: int, end: int) -> int:
    return _read_long(buf, pos, end)[1]


def compile_guard(parsed) -> Guard | None:
    """A Guard for a dangerous fastavro-parsed schema (recursive, or arrays of zero-size items), else None."""
    defs = parsed.get("__named_schemas", {}) if isinstance(parsed, dict) else {}
    root = _build(parsed, defs)
    nodes = _all_nodes(root)
    _mark_zero(nodes)
    if _recursive(nodes):
        return Guard(root, "recursive")
    if any(n.kind == "array" and n.children[0].zero for n in nodes):
        return Guard(root, "array of zero-size items")
    return None
