"""Java properties parsing: the rules of java.util.Properties.load."""

import pytest

from keystream.properties import PropertiesError, dump_properties, parse_properties


def test_separators_and_whitespace():
    text = "a=1\nb: 2\nc 3\n  d   =   4  \ne\t5\nf=\ng\n"
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3", "d": "4  ", "e": "5", "f": "", "g": ""}


def test_comments_and_blank_lines():
    text = "# comment\n! also a comment\n   # indented comment\n\n   \nkey=value # not a comment\n"
    assert parse_properties(text) == {"key": "value # not a comment"}


def test_only_first_separator_splits():
    assert parse_properties("url=http://h:1/a=b\n") == {"url": "http://h:1/a=b"}
    assert parse_properties("k = = v\n") == {"k": "= v"}
    assert parse_properties("k :=v\n") == {"k": "=v"}


def test_continuation_lines():
    text = "list=a,\\\n    b,\\\n\tc\nnext=1\n"
    assert parse_properties(text) == {"list": "a,b,c", "next": "1"}


def test_continuation_does_not_start_a_comment():
    assert parse_properties("k=a\\\n  #b\n") == {"k": "a#b"}


def test_comment_line_cannot_continue():
    assert parse_properties("# c \\\nk=v\n") == {"k": "v"}


def test_even_backslashes_do_not_continue():
    assert parse_properties("path=C:\\\\\nk=v\n") == {"path": "C:\\", "k": "v"}


def test_continuation_at_end_of_file():
    assert parse_properties("k=v\\") == {"k": "v"}


def test_escapes():
    text = "tab=a\\tb\nnl=a\\nb\nuni=\\u00e9t\\u00E9\nother=\\q\\=\\:\nes\\ cap\\=ed\\:key=v\n"
    assert parse_properties(text) == {
        "tab": "a\tb", "nl": "a\nb", "uni": "été", "other": "q=:", "es cap=ed:key": "v",
    }


def test_malformed_unicode_escape():
    with pytest.raises(PropertiesError, match="line 2"):
        parse_properties("ok=1\nbad=\\u12\n")


def test_crlf_and_cr_line_endings():
    assert parse_properties("a=1\r\nb=2\rc=3") == {"a": "1", "b": "2", "c": "3"}


def test_last_value_wins():
    assert parse_properties("k=1\nk=2\n") == {"k": "2"}


def test_utf8_text():
    assert parse_properties("greeting=héllo ✓\n") == {"greeting": "héllo ✓"}


@pytest.mark.parametrize(
    "values",
    [
        {"simple": "v"},
        {"listeners": "PLAINTEXT://127.0.0.1:9092", "path": "C:\\data\\x"},
        {"lead": "  spaces", "ctl": "a\tb\nc", "hash": "#notcomment", "bang": "!x"},
        {"key with space": "v", "k=ey": "v", "k:ey": "v", "#key": "v", "!key": "v"},
        {"empty": ""},
    ],
)
def test_dump_round_trips(values):
    assert parse_properties(dump_properties(values, header="generated\nsecond line")) == values


def test_dump_keeps_colons_in_values_literal():
    assert dump_properties({"bootstrap.servers": "127.0.0.1:9092"}) == "bootstrap.servers=127.0.0.1:9092\n"
