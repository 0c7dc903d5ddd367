"""Validate the `hosting:` config against model/config.schema.json (JSON Schema, Draft 2020-12).

jsonschema finds every structural problem at once (types, ranges, patterns, unknown keys at any
depth, required keys); this module only turns each into a line naming the field path the way a
user writes it (`sites[1].php.version`) with a message that says what is allowed: the schema's
`errorMessage` templates where jsonschema's default would be cryptic, else the defaults below.
The checks across fields (duplicates, overlaps, R- limits) come after, in model.rules.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.validators import extend

from model.fields import domain_problem, ssh_public_key_problem

SCHEMA_PATH = Path(__file__).with_name("config.schema.json")
Location = tuple  # keys and list indexes from the config's root, e.g. ("sites", 1, "name")

# -- formats: each check raises ValueError with the whole message (shown as is) ---------------
FORMATS = FormatChecker(formats=())


@FORMATS.checks("ipv4-address", raises=ValueError)
def _ipv4_address(value: Any) -> bool:
    if isinstance(value, str):
        try:
            addr = ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        if not isinstance(addr, IPv4Address):
            raise ValueError(f"{value!r} must be an IPv4 address")
    return True


def _network(value: str) -> IPv4Network | Any:
    try:
        return ip_network(value, strict=True)
    except ValueError as exc:
        hint = ""
        if "host bits set" in str(exc):
            hint = f" (host bits set; the network is {ip_network(value, strict=False)})"
        raise ValueError(f"{value!r} is not a valid CIDR{hint}") from None


@FORMATS.checks("ipv4-network", raises=ValueError)
def _ipv4_network(value: Any) -> bool:
    if isinstance(value, str) and not isinstance(_network(value), IPv4Network):
        raise ValueError(f"{value!r} must be an IPv4 network")
    return True


@FORMATS.checks("ip-network", raises=ValueError)
def _ip_network(value: Any) -> bool:
    if isinstance(value, str):
        _network(value)
    return True


@FORMATS.checks("domain-name", raises=ValueError)
def _domain(value: Any) -> bool:
    problem = domain_problem(value) if isinstance(value, str) else None
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return True


@FORMATS.checks("openssh-public-key", raises=ValueError)
def _ssh_public_key(value: Any) -> bool:
    problem = ssh_public_key_problem(value) if isinstance(value, str) else None
    if problem:
        raise ValueError(problem)
    return True


@FORMATS.checks("time-zone", raises=ValueError)
def _time_zone(value: Any) -> bool:
    if isinstance(value, str):
        from zoneinfo import ZoneInfo
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):
            raise ValueError(f"{value!r} is not a known time zone") from None
    return True


def _pattern(validator: Any, pattern: str, instance: Any,
             schema: dict) -> Iterator[ValidationError]:
    """The standard `pattern`, except that a final `$` does not match before a trailing newline
    (Python's `$` does, ECMA-262's, the schema's dialect, does not): "web\\n" is no identifier."""
    if not validator.is_type(instance, "string"):
        return
    if not re.search(pattern, instance) or (pattern.endswith("$") and instance.endswith("\n")):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# YAML's 100.0 is a float: not an integer here (JSON Schema would accept it).
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
Validator = extend(Draft202012Validator, {"pattern": _pattern}, type_checker=_TYPES)


@cache
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def _validator() -> Any:
    return Validator(load_schema(), format_checker=FORMATS)


# -- messages ----------------------------------------------------------------------------------
_KINDS = {"object": "a mapping", "array": "a list", "string": "a non-empty string",
          "integer": "an integer", "boolean": "true or false", "number": "a number"}
_DEFAULTS = {
    "minLength": "must not be empty",
    "pattern": "{value!r} is malformed (must match {pattern})",
    "enum": "unknown value {value!r}; supported: {allowed}",
    "const": "must be {const!r}",
    "range": "{value} is out of range {minimum}..{maximum}",
    "minItems": "must list at least {minItems} item(s)",
    "maxItems": "must list at most {maxItems} items",
    "required": "missing (required)",
    "additionalProperties": "unknown key (typo?); known keys: {known}",
}


def kind(value: Any) -> str:
    """How a YAML value reads in a message: 'a mapping', 'a string', 'nothing'..."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


def path_text(location: Location, root_prefix: str = "") -> str:
    """("sites", 1, "php", "version") -> "sites[1].php.version"."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else f"{root_prefix}{part}"
    return text


def validate_config(config: dict[str, Any]) -> list[tuple[Location, str, str]]:
    """Every schema problem of the `hosting:` config as (location, path text, message), in the
    schema's order; at most one problem per value (a wrong type hides that value's other checks)."""
    errors = list(_validator().iter_errors(config))
    typed = {_where(e) for e in errors if e.validator == "type"}
    empty = {_where(e) for e in errors if e.validator == "minLength"}
    found: list[tuple[Location, str, str]] = []
    for e in errors:
        where = _where(e)
        if (where in typed and e.validator != "type") or \
                (where in empty and e.validator not in ("type", "minLength")):
            continue
        for location, message in _explain(e):
            prefix = "hosting:" if e.validator == "additionalProperties" and not where else ""
            item = (location, path_text(location, prefix), message)
            if item not in found:
                found.append(item)
    return found


def _where(e: ValidationError) -> Location:
    """The value's location; a key refused by `propertyNames` (the error's instance) included."""
    where = tuple(e.absolute_path)
    return (*where, str(e.instance)) if "propertyNames" in e.relative_schema_path else where


def _template(e: ValidationError, keyword: str) -> Any:
    custom = e.schema.get("errorMessage", {}) if isinstance(e.schema, dict) else {}
    if keyword in custom:
        return custom[keyword]
    if keyword in ("minimum", "maximum"):
        return custom.get("range", _DEFAULTS["range"])
    return _DEFAULTS.get(keyword, "")


def _explain(e: ValidationError) -> Iterator[tuple[Location, str]]:
    where = _where(e)
    value = e.instance
    schema = e.schema if isinstance(e.schema, dict) else {}
    fields = {k: v for k, v in schema.items() if isinstance(k, str)}
    fields.update(value=value, instance=value,
                  allowed=", ".join(str(v) for v in schema.get("enum", ())))
    if e.validator == "type":
        if isinstance(value, dict) and "secure" in value:
            yield where, "must be a plain value, not a Pulumi secret"
        else:
            yield where, f"must be {_KINDS.get(str(e.validator_value), e.validator_value)}, " \
                         f"got {kind(value)}"
    elif e.validator == "format":
        yield where, str(e.cause) if e.cause else e.message
    elif e.validator == "required":
        template = _template(e, "required")
        for key in e.validator_value:
            if key not in value:
                text = template.get(key, _DEFAULTS["required"]) if isinstance(template, dict) \
                    else template
                yield (*where, key), text.format(key=key, **fields)
    elif e.validator == "additionalProperties":
        known = ", ".join(sorted(schema.get("properties", {})))
        for key in value:
            if key not in schema.get("properties", {}):
                yield (*where, key), _template(e, e.validator).format(known=known, **fields)
    else:
        yield where, (_template(e, e.validator) or e.message).format(**fields)
