"""A small validating reader: walks raw YAML data by field path and collects every problem.

Each accessor returns the value, or None after recording an error, so one pass reports all
errors at once (the issue's demand) instead of stopping at the first.
"""
from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

from model.errors import ConfigError

MISSING: Any = object()


class Reader:
    def __init__(self, file: str):
        self.file = file
        self.errors: list[ConfigError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(ConfigError(self.file, path, message))

    # -- structure -------------------------------------------------------------------------
    def mapping(self, value: Any, path: str, required: set[str],
                optional: set[str] = frozenset()) -> dict[str, Any] | None:  # type: ignore[assignment]
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {_kind(value)}")
            return None
        for key in value:
            if key not in required and key not in optional:
                known = ", ".join(sorted(required | set(optional)))
                self.error(_join(path, str(key)), f"unknown key (typo?); known keys: {known}")
        for key in sorted(required):
            if key not in value:
                self.error(_join(path, key), "missing (required)")
        return value

    def listing(self, value: Any, path: str) -> list[Any] | None:
        if not isinstance(value, list):
            self.error(path, f"must be a list, got {_kind(value)}")
            return None
        return value

    # -- scalars ---------------------------------------------------------------------------
    def string(self, value: Any, path: str, pattern: str | None = None,
               explain: str = "") -> str | None:
        if value is MISSING:
            return None
        if isinstance(value, dict) and "secure" in value:
            self.error(path, "must be a plain value, not a Pulumi secret")
            return None
        if not isinstance(value, str) or not value:
            self.error(path, f"must be a non-empty string, got {_kind(value)}")
            return None
        if pattern and not re.fullmatch(pattern, value):
            self.error(path, f"{value!r} {explain or 'is malformed (must match ' + pattern + ')'}")
            return None
        return value

    def integer(self, value: Any, path: str, low: int, high: int, why: str = "") -> int | None:
        if value is MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"must be an integer, got {_kind(value)}")
            return None
        if not low <= value <= high:
            self.error(path, f"{value} is out of range {low}..{high}{': ' + why if why else ''}")
            return None
        return value

    def boolean(self, value: Any, path: str) -> bool | None:
        if value is MISSING:
            return None
        if not isinstance(value, bool):
            self.error(path, f"must be true or false, got {_kind(value)}")
            return None
        return value

    def choice(self, value: Any, path: str, choices: tuple[str, ...], what: str) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        if text not in choices:
            self.error(path, f"unknown {what} {text!r}; supported: {', '.join(choices)}")
            return None
        return text

    def ipv4(self, value: Any, path: str) -> IPv4Address | None:
        text = self.string(value, path)
        if text is None:
            return None
        try:
            addr = ip_address(text)
        except ValueError:
            self.error(path, f"{text!r} is not an IP address")
            return None
        if not isinstance(addr, IPv4Address):
            self.error(path, f"{text!r} must be an IPv4 address")
            return None
        return addr

    def network(self, value: Any, path: str, v4_only: bool = True
                ) -> IPv4Network | IPv6Network | None:
        text = self.string(value, path)
        if text is None:
            return None
        try:
            net = ip_network(text, strict=True)
        except ValueError as exc:
            hint = ""
            if "host bits set" in str(exc):
                hint = f" (host bits set; the network is {ip_network(text, strict=False)})"
            self.error(path, f"{text!r} is not a valid CIDR{hint}")
            return None
        if v4_only and not isinstance(net, IPv4Network):
            self.error(path, f"{text!r} must be an IPv4 network")
            return None
        return net


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)
