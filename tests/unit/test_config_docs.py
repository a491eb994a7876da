"""README's config reference is generated from the schemas and must stay in sync with them."""

from pathlib import Path

import pytest

from keystream.config_docs import TABLES, render_block, update_readme

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("table", TABLES, ids=["broker", "registry"])
def test_readme_table_is_up_to_date(table):
    text = README.read_text(encoding="utf-8")
    assert render_block(table) in text, "README is stale: run `python -m keystream.config_docs --write README.md`"


@pytest.mark.parametrize("table", TABLES, ids=["broker", "registry"])
def test_every_property_is_documented(table):
    block = render_block(table)
    for prop in table.schema:
        assert f"| `{prop.name}`" in block, prop.name


def test_update_replaces_only_the_blocks():
    before = "intro\n" + "".join(f"{t.start}\nold table\n{t.end}\nbetween\n" for t in TABLES) + "outro\n"
    after = update_readme(before)
    assert after.startswith("intro\n") and after.endswith("\noutro\n") and "old table" not in after
    assert after.count("between\n") == len(TABLES)
    assert update_readme(after) == after


def test_update_appends_when_markers_are_missing():
    after = update_readme("intro\n")
    assert all(render_block(t) in after for t in TABLES) and after.endswith(TABLES[-1].end + "\n")
