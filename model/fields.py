"""Checks of single values that a JSON Schema pattern cannot express, each with its reason."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

# The patterns and value sets of each key live in model/config.schema.json; this module keeps
# what a pattern cannot say (where a region is, DNS names, OpenSSH key lines: the schema's
# "domain-name" and "openssh-public-key" formats, checked by model.schema).

# OVHcloud regions located in France (R-GDPR-7), for infra.policies: the schema's pattern.
FRENCH_REGION = json.loads(Path(__file__).with_name("config.schema.json").read_text())[
    "$defs"]["french_region"]["pattern"]

# Where each region is (R-BKP-3 wants the long-term backups in another location, not merely
# under another name): a region's name starts with its site's code. GRA7 and GRA11 are two
# regions of one Gravelines campus; EU-WEST-PAR is the Paris 3-AZ region, whose zones
# (EU-WEST-PAR-A, -B, -C) are data centres a few kilometres apart in the same metro area.
# Longest prefix first: "EU-WEST-PAR" must win over "PAR".
REGION_LOCATIONS = (("EU-WEST-PAR", "Paris"), ("GRA", "Gravelines"), ("SBG", "Strasbourg"),
                    ("RBX", "Roubaix"), ("PAR", "Paris"))


def region_location(region: str) -> str | None:
    """The city an OVHcloud region is in (REGION_LOCATIONS), or None for an unknown name."""
    for prefix, city in REGION_LOCATIONS:
        if region.upper().startswith(prefix):
            return city
    return None


CA_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-rsa")

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def domain_problem(name: str) -> str | None:
    """Why `name` is not a usable lowercase DNS name, or None when it is fine."""
    if len(name) > 253:
        return "is longer than 253 characters"
    labels = name.split(".")
    if len(labels) < 2:
        return "is not a fully qualified domain name (needs at least one dot)"
    for label in labels:
        if not _LABEL.fullmatch(label):
            return (f"has an invalid label {label!r} (lowercase letters, digits and inner "
                    "hyphens, 1-63 characters)")
    if not labels[-1].isalpha():
        return f"has a non-alphabetic top-level domain {labels[-1]!r}"
    return None


def ssh_public_key_problem(text: str) -> str | None:
    """Why `text` is not an OpenSSH public key line, or None when it is one."""
    parts = text.split()
    if len(parts) < 2:
        return "is not an OpenSSH public key ('<type> <base64> [comment]')"
    kind, blob = parts[0], parts[1]
    if kind not in CA_KEY_TYPES:
        return f"has unsupported key type {kind!r}; supported: {', '.join(CA_KEY_TYPES)}"
    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError:
        return "has a key body that is not valid base64"
    if len(raw) < 4:
        return "has a truncated key body"
    n = int.from_bytes(raw[:4], "big")
    if raw[4:4 + n].decode("ascii", "replace") != kind:
        return f"has a key body that is not a {kind} key"
    return None
