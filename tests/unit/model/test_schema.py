"""model.schema: the `hosting:` config against model/config.schema.json, one message per value
naming the field path (the bad-input cases of the whole file are in test_parse.py)."""
from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from model import ConfigErrors, parse_stack
from model.schema import load_schema, path_text

FILE = "Pulumi.prod.yaml"


def _errors(mutated, change) -> list[tuple[str, str]]:
    with pytest.raises(ConfigErrors) as info:
        parse_stack(mutated(change), FILE)
    return [(e.path, e.message) for e in info.value.errors]


def test_load_schema_is_a_valid_draft_2020_12_schema():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_load_schema_every_object_refuses_unknown_keys():
    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)
    found = list(objects(load_schema()))
    assert len(found) >= 15
    assert all(o.get("additionalProperties") is False for o in found)


@pytest.mark.parametrize("location,text", [
    (("sites", 1, "php", "version"), "sites[1].php.version"),
    (("admin", "networks", 0), "admin.networks[0]"),
    (("ssh", "principals", "ci-deploy", 2), "ssh.principals.ci-deploy[2]"),
    ((), ""),
])
def test_path_text_keys_and_indexes_read_as_written(location, text):
    assert path_text(location) == text


def test_parse_stack_name_with_trailing_newline_refused(mutated):
    # Python's `$` matches before a final newline; a site name becomes a shell word.
    assert _errors(mutated, lambda c: c["hosting:sites"][0].update(name="ville\n")) == [
        ("sites[0].name", "'ville\\n' is not a safe identifier: 2-16 lowercase letters or "
         "digits starting with a letter (it becomes a Unix user, a database name, a host name "
         "and a path)")]


def test_parse_stack_float_host_number_refused(mutated):
    assert _errors(mutated, lambda c: c["hosting:sites"][0].update(host_number=100.0)) == [
        ("sites[0].host_number", "must be an integer, got a number")]


def test_parse_stack_wrong_type_reported_once_per_value(mutated):
    # 8.4 (a YAML float) fails both `type` and `enum`: one message, the type.
    assert _errors(mutated, lambda c: c["hosting:sites"][0]["php"].update(version=8.4)) == [
        ("sites[0].php.version", "must be a non-empty string, got a number")]


def test_parse_stack_empty_string_says_empty(mutated):
    assert _errors(mutated, lambda c: c["hosting:sites"][0].update(name="")) == [
        ("sites[0].name", "must not be empty")]


def test_parse_stack_secret_in_model_key_refused_for_any_type(mutated):
    assert _errors(mutated, lambda c: c["hosting:network"].update(vlan_id={"secure": "v1:x"})) \
        == [("network.vlan_id", "must be a plain value, not a Pulumi secret")]


def test_parse_stack_bad_principal_name_names_the_key(mutated):
    def change(c):
        c["hosting:ssh"]["principals"]["Bad Name"] = ["web"]
    assert _errors(mutated, change) == [
        ("ssh.principals.Bad Name", "'Bad Name' is not a valid principal name")]


def test_parse_stack_git_codebase_without_ref_refused(mutated):
    def change(c):
        del c["hosting:sites"][0]["codebase"]["ref"]
    assert _errors(mutated, change) == [
        ("sites[0].codebase.ref",
         "missing: a git codebase needs a ref (branch, tag or constraint)")]


def test_parse_stack_section_not_mapping_reports_no_missing_children(mutated):
    assert _errors(mutated, lambda c: c.update({"hosting:tls": ["a"]})) == [
        ("tls", "must be a mapping, got a list")]


def test_parse_stack_unknown_key_in_optional_section_refused(mutated):
    assert _errors(mutated, lambda c: c.update({"hosting:exposure": {"indexable": True,
                                                                     "alow": []}})) == [
        ("exposure.alow", "unknown key (typo?); known keys: allow, indexable")]


def test_parse_stack_unknown_file_key_refused(mutated, prod_doc):
    import yaml
    text = yaml.safe_dump(dict(prod_doc, confg={}), sort_keys=False)
    with pytest.raises(ConfigErrors) as info:
        parse_stack(text, FILE)
    assert [(e.path, e.message) for e in info.value.errors] == [
        ("confg", "unknown key (typo?); known keys: config, encryptedkey, encryptionsalt, "
         "secretsprovider")]


def test_parse_stack_non_string_principal_name_refused(mutated):
    # YAML reads `123:` as an integer key; a pattern alone would let it through.
    def change(c):
        c["hosting:ssh"]["principals"][123] = ["web"]
    assert _errors(mutated, change) == [
        ("ssh.principals.123", "must be a non-empty string, got an integer")]
