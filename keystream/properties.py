"""Java `.properties` files: read and write them the way `java.util.Properties` does.

Kafka's tools and configs are properties files, so users bring theirs unchanged; this parser
follows the Java rules (comments, separators, continuations, escapes) rather than INI rules.
Files are read as UTF-8 (Java's `load(InputStream)` uses ISO-8859-1; `\\uXXXX` works in both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

_WHITESPACE = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_CONTROL = {v: k for k, v in _ESCAPES.items()}


class PropertiesError(ValueError):
    """A properties file that cannot be parsed (carries the line number)."""


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Yield (first line number, logical line), joining backslash continuations."""
    pending: str | None = None
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.lstrip(_WHITESPACE)
        if pending is None:
            if not line or line[0] in "#!":
                continue
            start = number
        else:
            line = pending + line
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = line[:-1]
            continue
        pending = None
        yield start, line
    if pending is not None:
        yield start, pending


def _unescape(text: str, line_no: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 >= len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "u":
            digits = text[i + 2 : i + 6]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise PropertiesError(f"line {line_no}: malformed \\uxxxx escape")
            out.append(chr(int(digits, 16)))
            i += 6
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


def _split_key(line: str) -> tuple[str, str]:
    """Split a logical line at the first unescaped `=`, `:` or whitespace."""
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "=:" or ch in _WHITESPACE:
            break
        i += 1
    key, rest = line[:i], line[i:]
    rest = rest.lstrip(_WHITESPACE)
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(_WHITESPACE)
    return key, rest


def parse_properties(text: str) -> dict[str, str]:
    """Parse properties text into an ordered dict; a repeated key keeps its last value."""
    result: dict[str, str] = {}
    for line_no, line in _logical_lines(text):
        key, value = _split_key(line)
        result[_unescape(key, line_no)] = _unescape(value, line_no)
    return result


def load_properties(path: str | Path) -> dict[str, str]:
    """Read and parse a properties file."""
    return parse_properties(Path(path).read_text(encoding="utf-8"))


def _escape(text: str, is_key: bool) -> str:
    """Escape what the parser would otherwise misread; values keep `:`/`=` literal (kcat -F reads them raw)."""
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in _CONTROL:
            out.append("\\" + _CONTROL[ch])
        elif (ch == " " and (is_key or i == 0)) or (is_key and (ch in "=:" or (i == 0 and ch in "#!"))):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def dump_properties(values: Mapping[str, object], header: str | None = None) -> str:
    """Render a mapping as properties text that `parse_properties` reads back unchanged."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for key, value in values.items():
        lines.append(f"{_escape(str(key), True)}={_escape(str(value), False)}")
    return "\n".join(lines) + "\n"
