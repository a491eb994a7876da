"""Console producer line parsing and console consumer output, as Kafka's tools do them."""

import pytest

from keystream.console_format import (
    FormatterOptions,
    LineError,
    ParsedLine,
    ReaderOptions,
    Record,
    format_record,
    parse_line,
)


def reader(**props: str) -> ReaderOptions:
    return ReaderOptions.from_properties({k.replace("_", "."): v for k, v in props.items()})


def test_plain_lines_are_values():
    assert parse_line(b"Hello Kafka", ReaderOptions()) == ParsedLine(None, b"Hello Kafka")
    assert parse_line(b"", ReaderOptions()) == ParsedLine(None, b"")
    assert parse_line(b"a\tb", ReaderOptions()) == ParsedLine(None, b"a\tb")


def test_key_with_default_tab_separator():
    assert parse_line(b"k1\tv1\tmore", reader(parse_key="true")) == ParsedLine(b"k1", b"v1\tmore")


def test_custom_key_separator():
    opts = reader(parse_key="true", key_separator="::")
    assert parse_line(b"user::42::x", opts) == ParsedLine(b"user", b"42::x")
    assert parse_line(b"::v", opts) == ParsedLine(b"", b"v")


def test_missing_key_separator():
    with pytest.raises(LineError, match="No key separator found on line number 7"):
        parse_line(b"nokey", reader(parse_key="true"), 7)
    assert parse_line(b"nokey", reader(parse_key="true", ignore_error="true")) == ParsedLine(None, b"nokey")


def test_headers_key_and_value():
    opts = reader(parse_key="true", parse_headers="true")
    got = parse_line(b"h1:v1,h2:\tkey\tvalue", opts)
    assert got == ParsedLine(b"key", b"value", [("h1", b"v1"), ("h2", b"")])


def test_custom_header_separators():
    opts = reader(parse_headers="true", headers_delimiter="|", headers_separator=";", headers_key_separator="=")
    assert parse_line(b"a=1;b=x=y|payload", opts) == ParsedLine(None, b"payload", [("a", b"1"), ("b", b"x=y")])


def test_header_errors():
    opts = reader(parse_headers="true")
    with pytest.raises(LineError, match="headers delimiter"):
        parse_line(b"no delimiter", opts)
    with pytest.raises(LineError, match="header key separator"):
        parse_line(b"broken\tvalue", opts)


def test_null_marker():
    opts = reader(parse_key="true", parse_headers="true", null_marker="<null>")
    assert parse_line(b"h:<null>\t<null>\t<null>", opts) == ParsedLine(None, None, [("h", None)])
    assert parse_line(b"<null>\tk\tv", opts) == ParsedLine(b"k", b"v", [])
    with pytest.raises(LineError, match="null marker"):
        parse_line(b"<null>:x\tk\tv", opts)


def test_bad_reader_properties():
    with pytest.raises(ValueError, match="parse.key"):
        reader(parse_key="yes")
    with pytest.raises(ValueError, match="key.separator"):
        reader(key_separator="")


RECORD = Record(partition=0, offset=5, timestamp_type=1, timestamp=1700000000000, key=b"key", value=b"value",
                headers=[("h1", b"v1"), ("h2", None)])


def fmt(record: Record = RECORD, **props: str) -> bytes:
    return format_record(record, FormatterOptions.from_properties({k.replace("_", "."): v for k, v in props.items()}))


def test_value_only_by_default():
    assert fmt() == b"value\n"


def test_everything_in_kafka_order():
    out = fmt(print_timestamp="true", print_partition="true", print_offset="true", print_headers="true",
              print_key="true")
    assert out == b"CreateTime:1700000000000\tPartition:0\tOffset:5\th1:v1,h2:null\tkey\tvalue\n"


def test_brief_example_format():
    out = fmt(print_timestamp="true", print_partition="true", print_offset="true", print_key="true")
    assert out == b"CreateTime:1700000000000\tPartition:0\tOffset:5\tkey\tvalue\n"


def test_nulls_and_missing_headers_and_timestamps():
    record = Record(3, 9, 0, -1, None, None, [])
    out = fmt(record, print_timestamp="true", print_headers="true", print_key="true", null_literal="NULL")
    assert out == b"NO_TIMESTAMP\tNO_HEADERS\tNULL\tNULL\n"


def test_log_append_time_and_separators():
    record = Record(1, 2, 2, 42, b"k", b"v", [])
    assert fmt(record, print_timestamp="true", print_key="true", key_separator=" | ", line_separator="\r\n") == (
        b"LogAppendTime:42 | k | v\r\n"
    )


def test_without_value():
    assert fmt(print_key="true", print_value="false") == b"key\n"


def test_binary_values_are_written_raw():
    record = Record(0, 0, 1, 1, b"\x00\xff", b"\x80\x81", [])
    assert fmt(record, print_key="true") == b"\x00\xff\t\x80\x81\n"
