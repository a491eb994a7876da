"""README's config reference is generated from the schema and must stay in sync with it."""

from pathlib import Path

from keystream.config import BROKER_SCHEMA
from keystream.config_docs import END, START, render_block, update_readme

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_up_to_date():
    text = README.read_text(encoding="utf-8")
    assert render_block() in text, "README is stale: run `python -m keystream.config_docs --write README.md`"


def test_every_property_is_documented():
    text = README.read_text(encoding="utf-8")
    for prop in BROKER_SCHEMA:
        assert f"| `{prop.name}`" in text, prop.name


def test_update_replaces_only_the_block():
    before = f"intro\n{START}\nold table\n{END}\noutro\n"
    after = update_readme(before)
    assert after.startswith("intro\n") and after.endswith("\noutro\n") and "old table" not in after
    assert update_readme(after) == after


def test_update_appends_when_markers_are_missing():
    assert update_readme("intro\n").endswith(END + "\n")
