"""The ACME settings a role reads (issue 14, R-SCOPE-2): the inventory's optional `acme`
section (typed by engine/inventory.acme_settings, the model's `hosting:acme`), its values
checked here with the sites and the zone (an error names the field), one certbot lineage per
certificate set, which lineage the proxy serves for which site, and the OVH API access rules
the consumer key must be granted (least privilege: `fab acme.credentials` prints them).

    "acme": {"enabled": true, "directory": "https://acme-v02.api.letsencrypt.org/directory",
             "email": "hostmaster@villeparisis.fr",
             "certificates": [{"name": "villeparisis.fr",
                               "names": ["villeparisis.fr", "*.villeparisis.fr"]}],
             "key_type": "ecdsa", "elliptic_curve": "secp256r1", "ovh_endpoint": "ovh-eu",
             "propagation_seconds": 120, "lab": false}

Without the section (or with `enabled: false`) nothing about ACME is deployed and the proxy
serves the uploaded or lab certificate as before.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.inventory import Inventory, InventoryError, acme_settings
from model.types import Acme as Settings
from model.types import AcmeCertificate
from roles.proxy.names import certificate_names, uncovered

PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
DIRECTORIES = {"production": PRODUCTION, "staging": STAGING}
OVH_ENDPOINTS = ("ovh-eu", "ovh-ca", "ovh-us")
CURVES = ("secp256r1", "secp384r1")
KEY_TYPES = ("ecdsa", "rsa")
RSA_SIZES = (2048, 3072, 4096)

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
PROXY_CERT_DIR = "/etc/ssl/hosting/acme"  # <lineage>/fullchain.pem, privkey.pem
PROXY_LINEAGES = "/etc/hosting/acme/proxy-lineages.json"  # what the installer accepts
PRINCIPAL = "acme-deploy"
INSTALLER = f"{HOOK_DIR}/install.py"
PYTHON = "/usr/bin/python3"

_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_NAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")
_LINEAGE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,252}$")  # also a path component


class AcmeConfigError(ValueError):
    pass


@dataclass(frozen=True)
class CertSet:
    """One certificate set: one certbot lineage on ops, one pair on the proxy."""
    lineage: str  # certbot's --cert-name
    names: tuple[str, ...]

    @property
    def live_dir(self) -> str:
        return f"{CONFIG_DIR}/live/{self.lineage}"

    @property
    def proxy_dir(self) -> str:
        """Where the proxy keeps this lineage's pair (the installer writes it)."""
        return f"{PROXY_CERT_DIR}/{self.lineage}"

    @property
    def proxy_cert(self) -> str:
        return f"{self.proxy_dir}/fullchain.pem"

    @property
    def proxy_key(self) -> str:
        return f"{self.proxy_dir}/privkey.pem"

    def covers(self, site_names: tuple[str, ...]) -> bool:
        return not uncovered(self.names, site_names)


@dataclass(frozen=True)
class Acme:
    enabled: bool
    directory: str
    email: str
    certificates: tuple[CertSet, ...]
    zone: str
    key_type: str = "ecdsa"
    elliptic_curve: str = "secp256r1"
    rsa_key_size: int = 2048
    ovh_endpoint: str = "ovh-eu"
    propagation_seconds: int = 120
    lab: bool = False  # --no-random-sleep-on-renew (the lab's renewals are forced by tests)

    def lineage(self, name: str) -> CertSet:
        for cert in self.certificates:
            if cert.lineage == name:
                return cert
        raise AcmeConfigError(f"no certificate set named {name!r}; sets: "
                              f"{', '.join(x.lineage for x in self.certificates)}")


def from_doc(doc: Mapping[str, Any] | None, site_names: tuple[str, ...],
             zone: str) -> Acme | None:
    """The checked settings, None when ACME is off; AcmeConfigError naming the field."""
    try:
        typed = acme_settings(doc)
    except InventoryError as exc:
        raise AcmeConfigError(str(exc)) from None
    return from_settings(typed, site_names, zone)


def _check_names(names: tuple[str, ...], zone: str, where: str) -> None:
    if not names:
        raise AcmeConfigError(f"{where}: at least one name is required")
    for i, n in enumerate(names):
        if not _NAME.match(n):
            raise AcmeConfigError(f"{where}[{i}]: {n!r} is not a DNS name or wildcard")
        if n.removeprefix("*.") != zone and not n.endswith("." + zone):
            raise AcmeConfigError(f"{where}[{i}]: {n!r} is outside the DNS zone {zone} "
                                  "(DNS-01 writes its TXT record in that zone only)")
        if n in names[:i]:
            raise AcmeConfigError(f"{where}[{i}]: duplicate name {n!r}")


def from_settings(a: Settings | None, site_names: tuple[str, ...], zone: str) -> Acme | None:
    if a is None or not a.enabled:
        return None
    directory = DIRECTORIES.get(a.directory, a.directory)
    if not directory.startswith("https://"):
        raise AcmeConfigError(f"acme.directory: {directory!r} is not an https:// URL "
                              "(or 'production' / 'staging')")
    if not _EMAIL.match(a.email):
        raise AcmeConfigError(f"acme.email: {a.email!r} is not an e-mail address "
                              "(the ACME account's contact for expiry notices)")
    sets: list[CertSet] = []
    given = a.certificates or (AcmeCertificate(certificate_names(site_names)),)
    for i, cert in enumerate(given):
        where = f"acme.certificates[{i}]" if a.certificates else "acme.certificates"
        names = tuple(cert.names)
        _check_names(names, zone, f"{where}.names")
        lineage = cert.lineage
        if not _LINEAGE.match(lineage):
            raise AcmeConfigError(f"{where}.name: {lineage!r} is not a lineage name "
                                  "(letters, digits, '.' and '-')")
        if lineage in (x.lineage for x in sets):
            raise AcmeConfigError(f"{where}.name: duplicate lineage {lineage!r}")
        sets.append(CertSet(lineage, names))
    if a.key_type not in KEY_TYPES:
        raise AcmeConfigError(f"acme.key_type: {a.key_type!r} is not one of "
                              f"{', '.join(KEY_TYPES)}")
    if a.elliptic_curve not in CURVES:
        raise AcmeConfigError(f"acme.elliptic_curve: {a.elliptic_curve!r} is not one of "
                              f"{', '.join(CURVES)}")
    if a.rsa_key_size not in RSA_SIZES:
        raise AcmeConfigError(f"acme.rsa_key_size: {a.rsa_key_size} is not one of "
                              f"{', '.join(map(str, RSA_SIZES))}")
    if a.ovh_endpoint not in OVH_ENDPOINTS:
        raise AcmeConfigError(f"acme.ovh_endpoint: {a.ovh_endpoint!r} is not one of "
                              f"{', '.join(OVH_ENDPOINTS)}")
    if not 0 <= a.propagation_seconds <= 3600:
        raise AcmeConfigError(f"acme.propagation_seconds: {a.propagation_seconds} is not in "
                              "0..3600")
    return Acme(True, directory, a.email, tuple(sets), zone, a.key_type, a.elliptic_curve,
                a.rsa_key_size, a.ovh_endpoint, a.propagation_seconds, a.lab)


def acme(inv: Inventory) -> Acme | None:
    site_names = tuple(n for s in inv.sites for n in s.names)
    return from_doc(inv.doc.get("acme"), site_names, str(inv.doc.get("dns_zone", "")))


def site_certificates(acme: Acme | None, inv: Inventory) -> dict[str, CertSet]:
    """Which lineage the proxy serves for each site: the first set (config order) covering all
    the site's names; a site no set covers is absent (it keeps the uploaded or lab pair)."""
    if acme is None:
        return {}
    out = {}
    for site in inv.sites:
        for cert in acme.certificates:
            if cert.covers(site.names):
                out[site.name] = cert
                break
    return out


def proxy_lineages(acme: Acme, inv: Inventory) -> dict[str, Any]:
    """The proxy installer's configuration (PROXY_LINEAGES, written by roles/acme): the
    lineages it accepts, the names each certificate must carry, and where to check that nginx
    serves it once reloaded (each site's IP and name for the sites served from it)."""
    served = site_certificates(acme, inv)
    lineages = {}
    for cert in acme.certificates:
        probes = [[s.public_ip, s.domain] for s in inv.sites
                  if served.get(s.name) == cert]
        lineages[cert.lineage] = {"names": list(cert.names), "cert": cert.proxy_cert,
                                  "key": cert.proxy_key, "probes": probes}
    return {"lineages": lineages}


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
