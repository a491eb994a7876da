"""Line formats of the console producer and consumer, with Kafka's property names and defaults.

Scripts written for kafka-console-producer/-consumer (`parse.key`, `key.separator`, `print.offset`,
...) read and print the same bytes with `keystream produce`/`consume`. Pure functions on bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Header = tuple[str, bytes | None]
TIMESTAMP_TYPES = {0: "NO_TIMESTAMP", 1: "CreateTime", 2: "LogAppendTime"}


class LineError(ValueError):
    """A producer input line that does not match the configured format."""


def _flag(props: Mapping[str, str], name: str, default: bool) -> bool:
    if name not in props:
        return default
    text = props[name].strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"property {name} must be true or false, not '{props[name]}'")
    return text == "true"


def _bytes(props: Mapping[str, str], name: str, default: str) -> bytes:
    value = props.get(name, default)
    if value == "":
        raise ValueError(f"property {name} must not be empty")
    return value.encode()


@dataclass(frozen=True)
class ReaderOptions:
    """How the console producer splits a line into headers, key and value."""

    parse_key: bool = False
    key_separator: bytes = b"\t"
    parse_headers: bool = False
    headers_delimiter: bytes = b"\t"
    headers_separator: bytes = b","
    headers_key_separator: bytes = b":"
    null_marker: bytes | None = None
    ignore_error: bool = False

    KNOWN = ("parse.key", "key.separator", "parse.headers", "headers.delimiter", "headers.separator",
             "headers.key.separator", "null.marker", "ignore.error")

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> ReaderOptions:
        """Build from `--property` values; raises ValueError on a bad value."""
        marker = props.get("null.marker")
        return cls(
            parse_key=_flag(props, "parse.key", False),
            key_separator=_bytes(props, "key.separator", "\t"),
            parse_headers=_flag(props, "parse.headers", False),
            headers_delimiter=_bytes(props, "headers.delimiter", "\t"),
            headers_separator=_bytes(props, "headers.separator", ","),
            headers_key_separator=_bytes(props, "headers.key.separator", ":"),
            null_marker=marker.encode() if marker else None,
            ignore_error=_flag(props, "ignore.error", False),
        )


@dataclass(frozen=True)
class ParsedLine:
    """One record to produce."""

    key: bytes | None
    value: bytes | None
    headers: list[Header] = field(default_factory=list)


def _split(line: bytes, start: int, sep: bytes, what: str, line_no: int) -> tuple[bytes, int]:
    index = line.find(sep, start)
    if index < 0:
        raise LineError(f"No {what} found on line number {line_no}: '{line.decode(errors='replace')}'")
    return line[start:index], index + len(sep)


def _headers(text: bytes, opts: ReaderOptions, line_no: int) -> list[Header]:
    headers: list[Header] = []
    if not text or text == opts.null_marker:
        return headers
    for pair in text.split(opts.headers_separator):
        key, sep, value = pair.partition(opts.headers_key_separator)
        if not sep:
            if not opts.ignore_error:
                raise LineError(f"No header key separator found in pair '{pair.decode(errors='replace')}'"
                                f" on line number {line_no}")
            headers.append((pair.decode(errors="replace"), None))
            continue
        if opts.null_marker is not None and key == opts.null_marker:
            raise LineError(f"Header keys should not be equal to the null marker on line number {line_no}")
        headers.append((key.decode(errors="replace"), None if value == opts.null_marker else value))
    return headers


def parse_line(line: bytes, opts: ReaderOptions, line_no: int = 1) -> ParsedLine:
    """Split one input line (without its newline) into headers, key and value."""
    pos = 0
    headers: list[Header] = []
    if opts.parse_headers:
        raw, pos = _split(line, 0, opts.headers_delimiter, "headers delimiter", line_no)
        headers = _headers(raw, opts, line_no)
    key: bytes | None = None
    if opts.parse_key:
        try:
            key, pos = _split(line, pos, opts.key_separator, "key separator", line_no)
        except LineError:
            if not opts.ignore_error:
                raise
    value: bytes | None = line[pos:]
    if opts.null_marker is not None:
        key = None if key == opts.null_marker else key
        value = None if value == opts.null_marker else value
    return ParsedLine(key, value, headers)


@dataclass(frozen=True)
class FormatterOptions:
    """What the console consumer prints for each record (Kafka's DefaultMessageFormatter)."""

    print_timestamp: bool = False
    print_partition: bool = False
    print_offset: bool = False
    print_headers: bool = False
    print_key: bool = False
    print_value: bool = True
    key_separator: bytes = b"\t"
    line_separator: bytes = b"\n"
    headers_separator: bytes = b","
    headers_key_separator: bytes = b":"
    null_literal: bytes = b"null"

    KNOWN = ("print.timestamp", "print.partition", "print.offset", "print.headers", "print.key",
             "print.value", "key.separator", "line.separator", "headers.separator",
             "headers.key.separator", "null.literal")

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> FormatterOptions:
        """Build from `--property` values; raises ValueError on a bad value."""
        return cls(
            print_timestamp=_flag(props, "print.timestamp", False),
            print_partition=_flag(props, "print.partition", False),
            print_offset=_flag(props, "print.offset", False),
            print_headers=_flag(props, "print.headers", False),
            print_key=_flag(props, "print.key", False),
            print_value=_flag(props, "print.value", True),
            key_separator=props.get("key.separator", "\t").encode(),
            line_separator=props.get("line.separator", "\n").encode(),
            headers_separator=props.get("headers.separator", ",").encode(),
            headers_key_separator=props.get("headers.key.separator", ":").encode(),
            null_literal=props.get("null.literal", "null").encode(),
        )


@dataclass(frozen=True)
class Record:
    """The parts of a consumed record the formatter prints."""

    partition: int
    offset: int
    timestamp_type: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[Header] = field(default_factory=list)


def format_record(rec: Record, opts: FormatterOptions) -> bytes:
    """Render a record like Kafka's console consumer: fields joined by key.separator, then a newline."""
    fields: list[bytes] = []
    if opts.print_timestamp:
        kind = TIMESTAMP_TYPES.get(rec.timestamp_type, "NO_TIMESTAMP")
        fields.append(b"NO_TIMESTAMP" if kind == "NO_TIMESTAMP" else f"{kind}:{rec.timestamp}".encode())
    if opts.print_partition:
        fields.append(f"Partition:{rec.partition}".encode())
    if opts.print_offset:
        fields.append(f"Offset:{rec.offset}".encode())
    if opts.print_headers:
        fields.append(opts.headers_separator.join(
            key.encode() + opts.headers_key_separator + (opts.null_literal if value is None else value)
            for key, value in rec.headers
        ) if rec.headers else b"NO_HEADERS")
    if opts.print_key:
        fields.append(opts.null_literal if rec.key is None else rec.key)
    if opts.print_value:
        fields.append(opts.null_literal if rec.value is None else rec.value)
    return opts.key_separator.join(fields) + opts.line_separator
