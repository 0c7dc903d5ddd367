"""The ACME settings a role reads (issue 14, R-SCOPE-2): the inventory's optional `acme`
section, typed and checked here (an error names the field), with the OVH API access rules the
consumer key must be granted (least privilege: `fab acme.credentials` prints them).

    "acme": {"enabled": true, "directory": "https://acme-v02.api.letsencrypt.org/directory",
             "email": "hostmaster@villeparisis.fr", "names": [...], "key_type": "ecdsa",
             "elliptic_curve": "secp256r1", "ovh_endpoint": "ovh-eu",
             "propagation_seconds": 120, "lab": false}

Without the section (or with `enabled: false`) nothing about ACME is deployed and the proxy
serves the uploaded or lab certificate as before.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.inventory import Inventory
from roles.proxy.names import certificate_names

PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
DIRECTORIES = {"production": PRODUCTION, "staging": STAGING}
OVH_ENDPOINTS = ("ovh-eu", "ovh-ca", "ovh-us")
CURVES = ("secp256r1", "secp384r1")

# On ops (certbot's own layout under /etc/letsencrypt).
CONFIG_DIR = "/etc/letsencrypt"
CLI_INI = f"{CONFIG_DIR}/cli.ini"
# The OVH credentials (certbot-dns-ovh's INI format, read by onhost/acme/ovh_dns.py): 0600
# root, written by `fab acme.set-credentials` (stdin, never argv);
# the role only makes sure the directory exists and never reads or overwrites the file.
CREDENTIALS_DIR = "/etc/hosting/acme"
CREDENTIALS = f"{CREDENTIALS_DIR}/ovh.ini"
HOOK = f"{CONFIG_DIR}/renewal-hooks/deploy/50-hosting-proxy"
HOOK_DIR = "/usr/local/lib/hosting/acme"
SSH_DIR = f"{CREDENTIALS_DIR}/ssh"
SSH_KEY = f"{SSH_DIR}/id_ed25519"
SSH_CERT = f"{SSH_KEY}-cert.pub"
SSH_CONFIG = f"{SSH_DIR}/ssh_config"
KNOWN_HOSTS = f"{SSH_DIR}/known_hosts"
STATUS = "/var/lib/hosting/acme/last-deploy.json"  # the hook's last result (audit, tests)
# On the proxy: the user the ops host's certificate logs in as, with a forced command.
PROXY_USER = "hosting-acme"
PRINCIPAL = "acme-deploy"
INSTALLER = f"{HOOK_DIR}/install.py"
PYTHON = "/usr/bin/python3"

_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_NAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")


class AcmeConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Acme:
    enabled: bool
    directory: str
    email: str
    names: tuple[str, ...]
    zone: str
    key_type: str = "ecdsa"
    elliptic_curve: str = "secp256r1"
    ovh_endpoint: str = "ovh-eu"
    propagation_seconds: int = 120
    lab: bool = False  # --no-random-sleep-on-renew (the lab's renewals are forced by tests)

    @property
    def lineage(self) -> str:
        """certbot's certificate name: the first name without its wildcard."""
        return self.names[0].removeprefix("*.")

    @property
    def live_dir(self) -> str:
        return f"{CONFIG_DIR}/live/{self.lineage}"


def _field(doc: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = doc.get(key, default)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise AcmeConfigError(f"acme.{key}: expected {kind.__name__}, got {value!r}")
    return value


def from_doc(doc: Mapping[str, Any] | None, site_names: tuple[str, ...],
             zone: str) -> Acme | None:
    """The typed settings, None when ACME is off; AcmeConfigError naming the field."""
    if not doc or not doc.get("enabled", False):
        return None
    unknown = sorted(set(doc) - {"enabled", "directory", "email", "names", "key_type",
                                 "elliptic_curve", "ovh_endpoint", "propagation_seconds",
                                 "lab"})
    if unknown:
        raise AcmeConfigError(f"acme.{unknown[0]}: unknown key")
    directory = _field(doc, "directory", str, "production")
    directory = DIRECTORIES.get(directory, directory)
    if not directory.startswith("https://"):
        raise AcmeConfigError(f"acme.directory: {directory!r} is not an https:// URL "
                              "(or 'production' / 'staging')")
    email = _field(doc, "email", str, "")
    if not _EMAIL.match(email):
        raise AcmeConfigError(f"acme.email: {email!r} is not an e-mail address "
                              "(the ACME account's contact for expiry notices)")
    names = tuple(_field(doc, "names", list, list(certificate_names(site_names))))
    for i, n in enumerate(names):
        if not isinstance(n, str) or not _NAME.match(n):
            raise AcmeConfigError(f"acme.names[{i}]: {n!r} is not a DNS name or wildcard")
        if n.removeprefix("*.") != zone and not n.endswith("." + zone):
            raise AcmeConfigError(f"acme.names[{i}]: {n!r} is outside the DNS zone {zone} "
                                  "(DNS-01 writes its TXT record in that zone only)")
    if not names:
        raise AcmeConfigError("acme.names: at least one name is required")
    if doc.get("key_type", "ecdsa") != "ecdsa":
        raise AcmeConfigError(f"acme.key_type: {doc['key_type']!r}: only 'ecdsa' is allowed")
    curve = _field(doc, "elliptic_curve", str, "secp256r1")
    if curve not in CURVES:
        raise AcmeConfigError(f"acme.elliptic_curve: {curve!r} is not one of {', '.join(CURVES)}")
    endpoint = _field(doc, "ovh_endpoint", str, "ovh-eu")
    if endpoint not in OVH_ENDPOINTS:
        raise AcmeConfigError(f"acme.ovh_endpoint: {endpoint!r} is not one of "
                              f"{', '.join(OVH_ENDPOINTS)}")
    propagation = _field(doc, "propagation_seconds", int, 120)
    if not 0 <= propagation <= 3600:
        raise AcmeConfigError(f"acme.propagation_seconds: {propagation} is not in 0..3600")
    return Acme(True, directory, email, names, zone, "ecdsa", curve, endpoint, propagation,
                _field(doc, "lab", bool, False))


def acme(inv: Inventory) -> Acme | None:
    site_names = tuple(n for s in inv.sites for n in s.names)
    return from_doc(inv.doc.get("acme"), site_names, str(inv.doc.get("dns_zone", "")))


def access_rules(zone: str) -> list[dict[str, str]]:
    """The OVH API calls the DNS-01 hooks make (onhost/acme/ovh_dns.py), and no other: create a
    record in this zone, delete a record of it, refresh it. Nothing can be read, nothing of
    another zone, nothing outside /domain/zone. A unit test runs the hooks against
    lab/fake_ovh.py with these rules (enough) and with each one removed (403)."""
    if not _NAME.match(zone) or zone.startswith("*."):
        raise AcmeConfigError(f"dns_zone: {zone!r} is not a DNS zone name")
    z = f"/domain/zone/{zone}"
    return [
        {"method": "POST", "path": f"{z}/record"},
        {"method": "DELETE", "path": f"{z}/record/*"},
        {"method": "POST", "path": f"{z}/refresh"},
    ]


def credential_request(zone: str) -> dict[str, Any]:
    """The body of POST /1.0/auth/credential (OVH's consumer key request)."""
    return {"accessRules": access_rules(zone)}
