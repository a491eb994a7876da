"""Generates broker/protocol/messages/*.py from Apache Kafka's JSON message specs (specs/*.json).

Each message version whose wire layout differs gets its own straight-line decode and encode
function, so the hot path never branches on the version. Run `make gen` (or
`python -m keystream.broker.protocol.codegen`) after adding or updating a spec; `--check` exits
non-zero when the checked-in modules differ from what the specs generate.
"""

import json
import keyword
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
SPECS = HERE / "specs"
OUT = HERE / "messages"
TOP = 32767

INTS = {"int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "uint16": "u16", "uint32": "u32"}
SIZES = {"i8": 1, "i16": 2, "i32": 4, "i64": 8, "u16": 2, "u32": 4}
PRIMITIVES = set(INTS) | {"bool", "float64", "string", "bytes", "records", "uuid"}


class Versions:
    """An inclusive version range from the spec syntax: "3+", "0-4", "5" or "none"."""

    def __init__(self, text: str | None):
        text = (text or "none").strip()
        if text == "none":
            self.lo, self.hi = 1, 0
        elif text.endswith("+"):
            self.lo, self.hi = int(text[:-1]), TOP
        elif "-" in text:
            lo, hi = text.split("-")
            self.lo, self.hi = int(lo), int(hi)
        else:
            self.lo = self.hi = int(text)

    def __contains__(self, v: int) -> bool:
        return self.lo <= v <= self.hi


@dataclass
class Struct:
    name: str
    fields: list["Field"] = field(default_factory=list)


@dataclass
class Field:
    name: str
    attr: str
    base: str  # primitive type name or struct name
    is_array: bool
    versions: Versions
    nullable: Versions
    tagged: Versions
    tag: int | None
    default: object
    flexible: Versions | None  # field-level override of the message's flexible versions
    struct: Struct | None


def strip_comments(text: str) -> str:
    """Drops // comments outside string literals (the specs are JSON with comments)."""
    out, i, in_str = [], 0, False
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def snake(name: str) -> str:
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s).lower()
    return s + "_" if keyword.iskeyword(s) else s


class Message:
    def __init__(self, spec: dict):
        self.name = spec["name"]
        self.api_key = spec.get("apiKey")
        self.kind = spec["type"]
        self.valid = Versions(spec["validVersions"])
        self.flexible = Versions(spec["flexibleVersions"])
        self.unstable = bool(spec.get("latestVersionUnstable"))
        self.structs: dict[str, Struct] = {}
        self.common = {c["name"]: c for c in spec.get("commonStructs", [])}
        self.root = Struct(self.name, self._fields(spec["fields"]))

    def _fields(self, specs: list[dict]) -> list[Field]:
        return [self._field(f) for f in specs]

    def _struct(self, name: str, fields: list[dict] | None) -> Struct:
        if name in self.structs:
            return self.structs[name]
        if fields is None:
            fields = self.common[name]["fields"]
        st = Struct(name)
        self.structs[name] = st
        st.fields = self._fields(fields)
        return st

    def _field(self, f: dict) -> Field:
        t = f["type"]
        is_array = t.startswith("[]")
        base = t[2:] if is_array else t
        struct = None if base in PRIMITIVES else self._struct(base, f.get("fields"))
        return Field(
            name=f["name"], attr=snake(f["name"]), base=base, is_array=is_array,
            versions=Versions(f["versions"]), nullable=Versions(f.get("nullableVersions")),
            tagged=Versions(f.get("taggedVersions")), tag=f.get("tag"), default=f.get("default"),
            flexible=Versions(f["flexibleVersions"]) if "flexibleVersions" in f else None,
            struct=struct,
        )

    def versions(self) -> range:
        return range(self.valid.lo, self.valid.hi + 1)


def default_expr(f: Field) -> str:
    """The Python expression for a field's spec default (fresh objects for lists/structs)."""
    d = f.default
    if d == "null":
        return "None"
    if f.is_array:
        return "[]"
    if f.struct is not None:
        return f"{f.struct.name}()"
    if f.base in INTS:
        return str(int(str(d), 0)) if d not in (None, "") else "0"
    if f.base == "bool":
        return "True" if str(d).lower() == "true" else "False"
    if f.base == "float64":
        return repr(float(d)) if d not in (None, "") else "0.0"
    if f.base == "string":
        return repr(d or "")
    if f.base == "uuid":
        return "ZERO_UUID"
    return 'b""'  # bytes, records


class Gen:
    """Emits one module; decode/encode functions are shared between versions with equal layouts."""

    def __init__(self, msg: Message):
        self.msg = msg
        self.lines: list[str] = []
        self.fn: dict[tuple[str, int], str] = {}  # (struct, version) -> function suffix
        self.bodies: dict[str, list[tuple]] = {}  # struct -> distinct layouts

    # -- layout ------------------------------------------------------------------------------
    def flex(self, f: Field, v: int) -> bool:
        return v in (f.flexible if f.flexible is not None else self.msg.flexible)

    def layout(self, st: Struct, v: int) -> tuple:
        flexible = v in self.msg.flexible
        sig = []
        for f in st.fields:
            if v not in f.versions:
                sig.append(None)
                continue
            child = self.plan(f.struct, v) if f.struct else None
            tag = f.tag if flexible and v in f.tagged else None
            sig.append((f.attr, self.flex(f, v), v in f.nullable, tag, child))
        return (flexible, tuple(sig))

    def plan(self, st: Struct, v: int) -> str:
        """Returns the function suffix for struct `st` at version `v`, planning children first."""
        key = (st.name, v)
        if key not in self.fn:
            sig = self.layout(st, v)
            variants = self.bodies.setdefault(st.name, [])
            if sig not in variants:
                variants.append(sig)
            self.fn[key] = f"{st.name}_{variants.index(sig)}"
        return self.fn[key]

    # -- decode ------------------------------------------------------------------------------
    def read_one(self, f: Field, v: int, target: str, ind: str, *, elem: bool = False) -> list[str]:
        """Statements reading one value of `f` (one element when `elem`) into `target`."""
        flex, nullable = self.flex(f, v), v in f.nullable and not elem
        b = f.base
        if f.struct is not None:
            call = f"{target}, pos = _d_{self.fn[(f.struct.name, v)]}(buf, pos)"
            if nullable and not f.is_array:
                return [f"{ind}if u_i8(buf, pos)[0] < 0:", f"{ind}    {target} = None",
                        f"{ind}    pos += 1", f"{ind}else:", f"{ind}    pos += 1", f"{ind}    {call}"]
            return [ind + call]
        if b in INTS:
            return [f"{ind}({target},) = u_{INTS[b]}(buf, pos)", f"{ind}pos += {SIZES[INTS[b]]}"]
        if b == "bool":
            return [f"{ind}{target} = buf[pos] != 0", f"{ind}pos += 1"]
        if b == "float64":
            return [f"{ind}({target},) = u_f64(buf, pos)", f"{ind}pos += 8"]
        if b == "uuid":
            return [f"{ind}{target}, pos = read_uuid(buf, pos)"]
        kind = "string" if b == "string" else "bytes"
        if b == "records":
            nullable = True
        fn = ("read_compact_" if flex else "read_") + ("nullable_" if nullable else "") + kind
        return [f"{ind}{target}, pos = {fn}(buf, pos)"]

    def read_field(self, f: Field, v: int, ind: str) -> list[str]:
        var = f"f_{f.attr}"
        if not f.is_array:
            return self.read_one(f, v, var, ind)
        ln = "read_compact_array_len" if self.flex(f, v) else "read_array_len"
        null = (f"{ind}    {var} = None" if v in f.nullable else
                f"{ind}    raise DecodeError('null array {f.name} where null is not allowed')")
        return [f"{ind}n, pos = {ln}(buf, pos)", f"{ind}if n < 0:", null, f"{ind}else:",
                f"{ind}    {var} = []", f"{ind}    append = {var}.append", f"{ind}    for _ in range(n):",
                *self.read_one(f, v, "item", ind + "        ", elem=True), f"{ind}        append(item)"]

    def gen_decode(self, st: Struct, v: int, suffix: str) -> None:
        flexible = v in self.msg.flexible
        L = [f"def _d_{suffix}(buf, pos):"]
        present = [f for f in st.fields if v in f.versions]
        tagged = [f for f in present if flexible and f.tag is not None and v in f.tagged]
        for f in present:
            if f in tagged:
                L.append(f"    f_{f.attr} = {default_expr(f)}")
            else:
                L += self.read_field(f, v, "    ")
        if flexible:
            if tagged:
                L += ["    n_tags, pos = read_uvarint(buf, pos)", "    for _ in range(n_tags):",
                      "        tag, pos, end = read_tag_header(buf, pos)"]
                for i, f in enumerate(sorted(tagged, key=lambda f: f.tag)):
                    L.append(f"        {'if' if i == 0 else 'elif'} tag == {f.tag}:")
                    L += self.read_field(f, v, "            ")
                L.append("        pos = end")
            else:
                L.append("    pos = skip_tagged_fields(buf, pos)")
        args = ", ".join(f"f_{f.attr}" if v in f.versions else default_expr(f) for f in st.fields)
        L.append(f"    return {st.name}({args}), pos")
        self.lines += L + ["", ""]

    # -- encode ------------------------------------------------------------------------------
    def write_one(self, f: Field, v: int, val: str, ind: str, *, elem: bool = False) -> list[str]:
        flex, nullable = self.flex(f, v), v in f.nullable and not elem
        b = f.base
        if f.struct is not None:
            call = [f"{ind}_e_{self.fn[(f.struct.name, v)]}({val}, w)", f"{ind}out = w.buf"]
            if nullable and not f.is_array:
                return [f"{ind}if {val} is None:", f"{ind}    out += b'\\xff'", f"{ind}else:",
                        f"{ind}    out.append(1)", *[("    " + c) for c in call]]
            return call
        if b in INTS:
            return [f"{ind}out += p_{INTS[b]}({val})"]
        if b == "bool":
            return [f"{ind}out.append(1 if {val} else 0)"]
        if b == "float64":
            return [f"{ind}out += p_f64({val})"]
        if b == "uuid":
            return [f"{ind}out += {val}"]
        if b == "records":
            return [f"{ind}w.records({val}, {flex})", f"{ind}out = w.buf"]
        if b == "string":
            fn = "w_compact_string" if flex else ("w_nullable_string" if nullable else "w_string")
            return [f"{ind}{fn}(out, {val})"]
        return [f"{ind}{'w_compact_bytes' if flex else 'w_bytes'}(out, {val})"]

    def write_field(self, f: Field, v: int, ind: str) -> list[str]:
        val = f"o.{f.attr}"
        if not f.is_array:
            return self.write_one(f, v, val, ind)
        ln = "w_compact_array_len" if self.flex(f, v) else "w_array_len"
        return [f"{ind}items = {val}", f"{ind}{ln}(out, items)", f"{ind}if items:",
                f"{ind}    for item in items:", *self.write_one(f, v, "item", ind + "        ", elem=True)]

    def gen_encode(self, st: Struct, v: int, suffix: str) -> None:
        flexible = v in self.msg.flexible
        L = [f"def _e_{suffix}(o, w):", "    out = w.buf"]
        present = [f for f in st.fields if v in f.versions]
        tagged = [f for f in present if flexible and f.tag is not None and v in f.tagged]
        for f in present:
            if f not in tagged:
                L += self.write_field(f, v, "    ")
        if flexible:
            if tagged:
                L.append("    tagged = []")
                for f in sorted(tagged, key=lambda f: f.tag):
                    cond = f"o.{f.attr}" if f.is_array else f"o.{f.attr} != {self.default_const(f)}"
                    L += [f"    if {cond}:", "        outer, w = w, Writer()", "        out = w.buf",
                          *self.write_field(f, v, "        "),
                          f"        tagged.append(({f.tag}, w.tobytes()))", "        w = outer",
                          "        out = w.buf"]
                L += ["    write_uvarint(out, len(tagged))", "    for tag, data in tagged:",
                      "        write_uvarint(out, tag)", "        write_uvarint(out, len(data))",
                      "        out += data"]
            else:
                L.append("    out.append(0)")
        if len(L) == 2:
            L[1] = "    pass"
        self.lines += L + ["", ""]

    def default_const(self, f: Field) -> str:
        if f.struct is not None and f.default != "null":
            return f"_DEFAULT_{f.struct.name}"
        return default_expr(f)

    # -- classes -----------------------------------------------------------------------------
    def gen_class(self, st: Struct, root: bool) -> None:
        m = self.msg
        attrs = [f.attr for f in st.fields]
        L = [f"class {st.name}:"]
        if root:
            kind = f"api key {m.api_key}, " if m.api_key is not None else ""
            flex = f"flexible {m.flexible.lo}+" if m.flexible.lo <= m.flexible.hi else "never flexible"
            L.append(f'    """{m.name} ({kind}versions {m.valid.lo}-{m.valid.hi}, {flex})."""')
        L.append("")
        L.append(f"    __slots__ = ({''.join(repr(a) + ', ' for a in attrs)})")
        if root:
            L += [f"    API_KEY = {m.api_key}", f"    VALID_VERSIONS = ({m.valid.lo}, {m.valid.hi})",
                  f"    FLEXIBLE_MIN = {m.flexible.lo if m.flexible.lo <= m.flexible.hi else None}",
                  f"    LATEST_UNSTABLE = {m.unstable}"]
        params = []
        body = []
        for f in st.fields:
            d = default_expr(f)
            if d in ("[]",) or d.endswith("()"):
                params.append(f"{f.attr}=DEFAULT")
                body.append(f"        self.{f.attr} = {d} if {f.attr} is DEFAULT else {f.attr}")
            else:
                params.append(f"{f.attr}={d}")
                body.append(f"        self.{f.attr} = {f.attr}")
        L.append("")
        if params:
            L.append(f"    def __init__(self, {', '.join(params)}):")
            L += body
        else:
            L += ["    def __init__(self):", "        pass"]
        self_t = "(" + "".join(f"self.{a}, " for a in attrs) + ")"
        other_t = "(" + "".join(f"other.{a}, " for a in attrs) + ")"
        L += ["", "    def __eq__(self, other):",
              f"        return type(other) is type(self) and {self_t} == {other_t}", "",
              "    __hash__ = None", "", "    def __repr__(self):",
              f"        return f\"{st.name}({', '.join(a + '={self.' + a + '!r}' for a in attrs)})\""]
        if root:
            L += ["", "    @staticmethod", "    def decode(buf, pos, version):",
                  '        """Returns (message, position after it); raises DecodeError on bad input."""',
                  "        try:", "            return _DECODE[version](buf, pos)",
                  "        except KeyError:",
                  "            raise DecodeError(f'{version} is not a valid version') from None",
                  "        except (struct.error, IndexError, UnicodeDecodeError) as e:",
                  "            raise DecodeError(str(e)) from None", "",
                  "    def encode(self, w, version):", "        _ENCODE[version](self, w)"]
        self.lines += L + ["", ""]

    def module(self) -> str:
        m = self.msg
        for v in m.versions():
            self.plan(m.root, v)
        order = [m.root] + [s for s in m.structs.values()]
        self.lines = [
            f"# Generated by keystream.broker.protocol.codegen from Apache Kafka's {m.name}.json",
            "# (Apache License 2.0, see NOTICE). Do not edit: change the spec or the generator.",
            "# ruff: noqa",
            "import struct", "",
            "from keystream.broker.protocol.codec import *  # noqa: F403",
            "", ""]
        for st in order:
            self.gen_class(st, st is m.root)
        for st in order:
            done = set()
            for v in m.versions():
                suffix = self.fn.get((st.name, v))
                if suffix and suffix not in done:
                    done.add(suffix)
                    self.gen_decode(st, v, suffix)
                    self.gen_encode(st, v, suffix)
        for st in m.structs.values():
            self.lines.append(f"_DEFAULT_{st.name} = {st.name}()")
        vs = list(m.versions())
        self.lines.append("_DECODE = {" + ", ".join(f"{v}: _d_{self.fn[(m.name, v)]}" for v in vs) + "}")
        self.lines.append("_ENCODE = {" + ", ".join(f"{v}: _e_{self.fn[(m.name, v)]}" for v in vs) + "}")
        return "\n".join(self.lines) + "\n"


def load_specs() -> list[Message]:
    return [Message(json.loads(strip_comments(p.read_text()))) for p in sorted(SPECS.glob("*.json"))]


def render_all() -> dict[str, str]:
    """Maps each output file name to its generated text."""
    files = {}
    msgs = load_specs()
    for m in msgs:
        files[snake(m.name) + ".py"] = Gen(m).module()
    idx = ["# Generated by keystream.broker.protocol.codegen. Do not edit.",
           '"""Every generated message class, and requests/responses by api key."""', ""]
    for m in msgs:
        idx.append(f"from .{snake(m.name)} import {m.name}")
    for kind, var in (("request", "REQUESTS"), ("response", "RESPONSES")):
        items = ", ".join(f"{m.api_key}: {m.name}" for m in msgs if m.kind == kind)
        idx += ["", f"{var} = {{{items}}}"]
    files["__init__.py"] = "\n".join(idx) + "\n"
    return files


def main(argv: list[str]) -> int:
    files = render_all()
    if "--check" in argv:
        stale = [n for n, text in files.items() if not (OUT / n).exists() or (OUT / n).read_text() != text]
        extra = [p.name for p in OUT.glob("*.py") if p.name not in files]
        for n in stale + extra:
            print(f"out of date: {OUT / n}")
        return 1 if stale or extra else 0
    for p in OUT.glob("*.py"):
        if p.name not in files:
            p.unlink()
    for n, text in files.items():
        (OUT / n).write_text(text)
    print(f"generated {len(files)} modules in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
