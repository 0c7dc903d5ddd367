"""The README's configuration reference, generated from model/config.schema.json.

One row per key that has a `description` (the rule column), in the schema's order; the type
column is the key's `title`, else what its `enum`, range or items say. `python -m model
schema-table` prints it; tests/unit/model/test_schema_table.py fails when the README drifts.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from model.schema import load_schema

HEADER = "| key | type | rule |\n|---|---|---|"


def markdown_table(schema: dict[str, Any] | None = None) -> str:
    schema = schema or load_schema()
    lines = [HEADER, *(f"| `{key}` | {kind} | {rule} |" for key, kind, rule in rows(schema))]
    return "\n".join(lines)


def rows(schema: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(key path, type, rule) for every described key, `sites[i].name` style."""
    yield from _walk(schema, schema, "")


def _walk(root: dict, node: dict, path: str) -> Iterator[tuple[str, str, str]]:
    node = _resolve(root, node)
    if path and "description" in node:
        yield path, _type(root, node), node["description"]
    for key, sub in node.get("properties", {}).items():
        yield from _walk(root, sub, f"{path}.{key}" if path else key)
    if isinstance(node.get("items"), dict):
        yield from _walk(root, node["items"], f"{path}[i]")


def _resolve(root: dict, node: dict) -> dict:
    """The node with its `$ref` target's keywords under its own (its own win)."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(root, target), **{k: v for k, v in node.items() if k != "$ref"}}


def _type(root: dict, node: dict) -> str:
    if "title" in node:
        return str(node["title"])
    if "enum" in node:
        return " \\| ".join(f"`{_yaml(v)}`" for v in node["enum"])
    kind = node.get("type")
    if kind == "integer":
        if "minimum" in node and "maximum" in node:
            return f"{node['minimum']}..{node['maximum']}"
        return "integer"
    if kind == "array" and isinstance(node.get("items"), dict):
        return "list of " + _type(root, _resolve(root, node["items"]))
    return {"boolean": "bool", "object": "mapping"}.get(str(kind), str(kind))


def _yaml(value: Any) -> str:
    """How to write the value in YAML: quoted when YAML would read it as a number."""
    text = str(value)
    return f'"{text}"' if re.fullmatch(r"[0-9.]+", text) else text
