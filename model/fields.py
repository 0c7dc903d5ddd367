"""Patterns and value sets the model accepts, each with the reason it exists."""
from __future__ import annotations

import base64
import re

# Site names become Unix users, MariaDB users and databases, host names (web-<name>), paths and
# shell words: lowercase letters and digits only, short enough for every one of those.
IDENTIFIER = r"[a-z][a-z0-9]{1,15}"
IDENTIFIER_EXPLAIN = ("is not a safe identifier: 2-16 lowercase letters or digits starting with a "
                      "letter (it becomes a Unix user, a database name, a host name and a path)")
PRINCIPAL = r"[a-z][a-z0-9-]{1,31}"
LOGIN_USER = r"[a-z][a-z0-9-]{1,31}"
FLAVOR = r"[a-z0-9][a-z0-9.-]{0,31}"
PROJECT_ID = r"[0-9a-f]{32}"
VRACK = r"pn-[0-9]+"
HHMM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
SHA256 = r"[0-9a-f]{64}"

# OVHcloud regions located in France (R-GDPR-7): Gravelines, Strasbourg, Roubaix, Paris.
FRENCH_REGION = r"(GRA|SBG|RBX)[0-9]{1,2}|EU-WEST-PAR(-[A-C])?|PAR[0-9]?"

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

# Debian 13 ships PHP 8.4 only; Drupal 11 needs PHP >= 8.3 (R-MNT-3).
PHP_VERSIONS = ("8.4",)
DRUPAL_VERSIONS = ("11",)
CODEBASE_TYPES = ("git", "composer", "archive")
ENVIRONMENTS = ("prod", "preprod")
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
