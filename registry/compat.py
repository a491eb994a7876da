"""Avro schema-resolution compatibility ("can a reader with schema R read data written with W?").

Follows the Avro specification's resolution rules and the checks and messages of Java Avro's
SchemaCompatibility, which Confluent's registry reports (error type, then the location path).
"""

from __future__ import annotations

from collections.abc import Sequence

from keystream.registry.schema import NO_DEFAULT, Node, ParsedSchema

LEVELS = ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE")

# writer type -> reader types it promotes to
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


def reader_can_read(reader: ParsedSchema, writer: ParsedSchema) -> list[str]:
    """[] when compatible, else one message per incompatibility."""
    try:
        return list(dict.fromkeys(_Checker().check(reader.root, writer.root, "")))
    except RecursionError:  # only reachable through long chains of references; fail closed
        return [_msg("TYPE_MISMATCH", "", "schemas are nested too deeply to check")]


def check(level: str, new: ParsedSchema, previous: Sequence[ParsedSchema]) -> list[str]:
    """previous: live versions oldest -> newest; non-transitive levels check only the newest."""
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"Unknown compatibility level {level!r}")
    if level == "NONE" or not previous:
        return []
    targets = previous if level.endswith("_TRANSITIVE") else previous[-1:]
    messages: list[str] = []
    for old in reversed(targets):
        if level.startswith(("BACKWARD", "FULL")):
            messages += reader_can_read(new, old)
        if level.startswith(("FORWARD", "FULL")):
            messages += reader_can_read(old, new)
    return list(dict.fromkeys(messages))


def _describe(node: Node) -> str:
    return node.name or node.kind


def _msg(kind: str, where: str, text: str) -> str:
    return f"{kind} at {where or '/'}: {text}"


class _Checker:
    def __init__(self) -> None:
        # (reader, writer) ids -> messages; an entry in progress reads as compatible so recursion ends
        self.memo: dict[tuple[int, int], list[str]] = {}

    def check(self, r: Node, w: Node, where: str) -> list[str]:
        key = (id(r), id(w))
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = []
        result = self._check(r, w, where)
        self.memo[key] = result
        return result

    def _check(self, r: Node, w: Node, where: str) -> list[str]:
        if w.kind == "union":
            out: list[str] = []
            for i, branch in enumerate(w.branches):
                out += self.check(r, branch, f"{where}/{i}")
            return out
        if r.kind == "union":
            # only branches that can match at all are checked deeply: keeps wide unions linear
            if any(not self.check(b, w, where) for b in r.branches if _may_match(b, w)):
                return []
            return [_msg("MISSING_UNION_BRANCH", where, f"reader union lacking writer type: {_describe(w)}")]
        if r.kind != w.kind:
            if r.kind in _PROMOTIONS.get(w.kind, ()):
                return []
            return [_msg("TYPE_MISMATCH", where,
                         f"reader type: {_describe(r)} not compatible with writer type: {_describe(w)}")]
        if r.kind == "record":
            return self._names(r, w, where) + self._fields(r, w, where)
        if r.kind == "enum":
            return self._names(r, w, where) + _symbols(r, w, where)
        if r.kind == "fixed":
            out = self._names(r, w, where)
            if r.size != w.size:
                out.append(_msg("FIXED_SIZE_MISMATCH", f"{where}/size",
                                f"expected: {w.size}, found: {r.size}"))
            return out + _decimal(r, w, where)
        if r.kind == "array":
            return self.check(r.items, w.items, f"{where}/items")
        if r.kind == "map":
            return self.check(r.items, w.items, f"{where}/values")
        return _decimal(r, w, where)

    @staticmethod
    def _names(r: Node, w: Node, where: str) -> list[str]:
        # unqualified names, or a reader alias naming the writer (spec; Java's SchemaCompatibility)
        if _may_match(r, w):
            return []
        return [_msg("NAME_MISMATCH", f"{where}/name", f"expected: {w.name}")]

    def _fields(self, r: Node, w: Node, where: str) -> list[str]:
        out: list[str] = []
        by_name = {f.name: f for f in w.fields}
        for i, rf in enumerate(r.fields):
            wf = next((by_name[n] for n in (rf.name, *rf.aliases) if n in by_name), None)
            if wf is not None:
                out += self.check(rf.type, wf.type, f"{where}/fields/{i}/type")
            elif rf.default is NO_DEFAULT:
                out.append(_msg("READER_FIELD_MISSING_DEFAULT_VALUE", f"{where}/fields/{i}",
                                f"the field '{rf.name}' of {r.name} has no default value and is missing "
                                f"in the writer's schema"))
        return out


def _may_match(r: Node, w: Node) -> bool:
    if r.kind != w.kind:
        return r.kind in _PROMOTIONS.get(w.kind, ())
    return r.name is None or r.short == w.short or w.name in r.aliases


def _symbols(r: Node, w: Node, where: str) -> list[str]:
    missing = [s for s in w.symbols if s not in r.symbols]
    if not missing or r.default is not NO_DEFAULT:
        return []
    return [_msg("MISSING_ENUM_SYMBOLS", f"{where}/symbols", f"[{', '.join(missing)}]")]


def _decimal(r: Node, w: Node, where: str) -> list[str]:
    """Two decimals match only with the same precision and scale (Avro spec, Confluent)."""
    if r.logical == w.logical == "decimal" and (r.precision, r.scale) != (w.precision, w.scale):
        return [_msg("TYPE_MISMATCH", where, f"reader decimal({r.precision},{r.scale}) not compatible "
                                             f"with writer decimal({w.precision},{w.scale})")]
    return []
