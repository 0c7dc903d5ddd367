"""The README's configuration reference is generated from model/config.schema.json."""
from __future__ import annotations

from model.schema import load_schema
from model.schema_table import HEADER, markdown_table, rows

from .conftest import ROOT


def _readme_table() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(HEADER.splitlines()[0])
    end = text.find("\n\n", start)
    return text[start:end if end != -1 else len(text)]


def test_markdown_table_readme_matches_schema():
    # On failure: .venv/bin/python -m model schema-table, and paste it into the README.
    assert _readme_table() == markdown_table()


def test_markdown_table_schema_change_changes_table():
    schema = {"type": "object", "properties": {
        "a": {"type": "integer", "minimum": 1, "maximum": 9, "description": "one digit"}}}
    assert markdown_table(schema) == HEADER + "\n| `a` | 1..9 | one digit |"


def test_rows_every_leaf_key_has_a_rule():
    keys = {key for key, _, rule in rows(load_schema()) if rule}
    assert {"environment", "ovh.region", "admin.networks", "ssh.principals",
            "sites[i].host_number", "sites[i].codebase.sha256", "exposure.allow"} <= keys
    assert len(keys) >= 45
