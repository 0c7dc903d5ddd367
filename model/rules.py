"""Checks that span several fields: duplicates, overlaps, and the contract's hard limits.

Field-level errors are already recorded; these checks skip values that failed to parse (None),
so a config with both kinds of problems still gets every one reported in a single run.
"""
from __future__ import annotations

import re
from collections import Counter
from ipaddress import IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING

from model.fields import region_location
from model.topology import WEB_FIRST, web_host_range
from model.types import ROLES

if TYPE_CHECKING:
    from model.errors import ErrorList
    from model.types import Stack


def check_stack(r: ErrorList, s: Stack) -> None:
    _environment_file(r, s)
    _unique_sites(r, s)
    _domains_in_zone(r, s)
    _addresses(r, s)
    _admin_networks(r, s)
    _edge_firewall_limits(r, s)
    _regions(r, s)
    _principals(r, s)
    _exposure(r, s)
    _monitoring(r, s)
    _site_quota(r, s)
    _acme(r, s)


def _environment_file(r: ErrorList, s: Stack) -> None:
    """`Pulumi.<env>.yaml` must hold environment <env>: a copied file must not deploy the
    other environment's names and exposure."""
    parts = Path(s.file).name.split(".")
    named = parts[1] if len(parts) == 3 else None
    if s.environment and named in ("prod", "preprod") and named != s.environment:
        r.error("environment", f"{s.environment!r} does not match the stack file name ({named})")


def _duplicates(values: list) -> set:
    return {v for v, n in Counter(v for v in values if v is not None).items() if n > 1}


def _unique_sites(r: ErrorList, s: Stack) -> None:
    for attr, what in (("name", "site name"), ("database", "database name"),
                       ("public_ip", "public IP (R-HOST-2: one IP per site)"),
                       ("host_number", "host number (one private address per web host)")):
        dup = _duplicates([getattr(x, attr) for x in s.sites])
        for i, site in enumerate(s.sites):
            if getattr(site, attr) in dup:
                field = "database.name" if attr == "database" else attr
                r.error(f"sites[{i}].{field}", f"duplicate {what} {str(getattr(site, attr))!r}")
    seen: dict[str, str] = {}
    for i, site in enumerate(s.sites):
        for j, name in enumerate(site.names):
            if name is None:
                continue
            path = f"sites[{i}].domain" if j == 0 else f"sites[{i}].aliases[{j - 1}]"
            if name in seen:
                r.error(path, f"duplicate domain {name!r} (already at {seen[name]})")
            else:
                seen[name] = path


def _domains_in_zone(r: ErrorList, s: Stack) -> None:
    zone = s.ovh.dns_zone
    if zone is None:
        return
    for i, site in enumerate(s.sites):
        for j, name in enumerate(site.names):
            if name is not None and name != zone and not name.endswith("." + zone):
                path = f"sites[{i}].domain" if j == 0 else f"sites[{i}].aliases[{j - 1}]"
                r.error(path, f"{name!r} is outside the DNS zone {zone!r} (ovh.dns_zone)")


def _addresses(r: ErrorList, s: Stack) -> None:
    net = s.network
    priv = net.private_cidr
    if priv is not None and not priv.is_private:
        r.error("network.private_cidr", f"{priv} is not a private (RFC 1918) range")
    if priv is not None and not web_host_range(priv):
        r.error("network.private_cidr", f"{priv} is too small for {len(s.sites)} sites: "
                f"web hosts are numbered from .{WEB_FIRST} (sites[].host_number)")
    else:
        _host_numbers(r, s, priv)
    blocks = [b for b in net.public_ip_blocks if b is not None]
    for i, a in enumerate(net.public_ip_blocks):
        if a is None:
            continue
        if priv is not None and a.overlaps(priv):
            r.error(f"network.public_ip_blocks[{i}]", f"{a} overlaps network.private_cidr {priv}")
        for j in range(i):
            b = net.public_ip_blocks[j]
            if b is not None and a.overlaps(b):
                r.error(f"network.public_ip_blocks[{i}]",
                        f"{a} overlaps network.public_ip_blocks[{j}] {b}")
    for i, site in enumerate(s.sites):
        ip = site.public_ip
        if ip is None:
            continue
        if not any(ip in b for b in blocks):
            allowed = ", ".join(str(b) for b in blocks) or "none declared"
            r.error(f"sites[{i}].public_ip", f"{ip} is outside the allowed public IP blocks "
                    f"(network.public_ip_blocks: {allowed})")


def _host_numbers(r: ErrorList, s: Stack, priv: IPv4Network | None) -> None:
    """Each site's host_number must name an address of the private network at .100 or above
    (uniqueness: _unique_sites). Without a valid CIDR only the lower bound can be checked."""
    for i, site in enumerate(s.sites):
        n = site.host_number
        if n is None:
            continue
        if priv is None:
            if n < WEB_FIRST:
                r.error(f"sites[{i}].host_number", f"{n} is below {WEB_FIRST}: web hosts are "
                        f"numbered from .{WEB_FIRST} (below: gateways, DHCP pools, proxy, ops, "
                        "storage)")
            continue
        allowed = web_host_range(priv)
        if n not in allowed:
            r.error(f"sites[{i}].host_number", f"{n} is out of range {allowed.start}.."
                    f"{allowed.stop - 1}: web hosts are numbered from .{WEB_FIRST} (below: "
                    f"gateways, DHCP pools, proxy, ops, storage) up to the last address of "
                    f"network.private_cidr {priv}")


def _admin_networks(r: ErrorList, s: Stack) -> None:
    for i, n in enumerate(s.admin_networks):
        if n is None:
            continue
        if n.prefixlen == 0:
            r.error(f"admin.networks[{i}]", f"{n} opens SSH to the whole Internet (R-GDPR-6)")
            continue
        if n.prefixlen < (8 if isinstance(n, IPv4Network) else 32):
            r.error(f"admin.networks[{i}]", f"{n} is too wide for an admin network (R-GDPR-6)")
        priv = s.network.private_cidr
        if priv is not None and isinstance(n, IPv4Network) and n.overlaps(priv):
            r.error(f"admin.networks[{i}]", f"{n} overlaps network.private_cidr {priv}")


# OVH's edge firewall takes 20 rules per IP (R-GDPR-6); the program spends some on fixed rules
# (ports, established replies, final deny), the rest on these lists. It is IPv4 only, so IPv6
# sources would be enforced by the security groups alone: refuse them rather than half-apply.
MAX_ADMIN_NETWORKS = 15
MAX_EXPOSURE_ALLOW = 9


def _edge_firewall_limits(r: ErrorList, s: Stack) -> None:
    for key, nets, limit in (("admin.networks", s.admin_networks, MAX_ADMIN_NETWORKS),
                             ("exposure.allow", s.exposure.allow, MAX_EXPOSURE_ALLOW)):
        if len(nets) > limit:
            r.error(key, f"{len(nets)} networks exceed the {limit} the OVH edge firewall can "
                    "hold (20 rules per IP)")
        for i, n in enumerate(nets):
            if n is not None and n.version == 6:
                r.error(f"{key}[{i}]", f"{n}: IPv6 sources are not supported (the OVH edge "
                        "firewall filters IPv4 only)")


def _regions(r: ErrorList, s: Stack) -> None:
    """R-BKP-3: compare where the regions are (model.fields.REGION_LOCATIONS), not their names:
    GRA7/GRA11 or EU-WEST-PAR-A/-B are different names in one location."""
    a, b = s.ovh.region, s.ovh.backup_b_region
    if not (a and b):
        return
    where = region_location(a)
    if where is not None and where == region_location(b):
        r.error("ovh.backup_b_region", f"{b} is in the same location ({where}) as ovh.region "
                f"{a}: long-term backups go to another region (R-BKP-3)")


def _site_quota(r: ErrorList, s: Stack) -> None:
    """R-GDPR-4: one site must not be able to take another's space: the limits of all sites
    together fit on the smaller storage volume."""
    st = s.storage
    if st.site_quota_gb is None or not (st.backup_a_volume_gb and st.backup_b_volume_gb):
        return
    smaller = min(st.backup_a_volume_gb, st.backup_b_volume_gb)
    if st.site_quota_gb * len(s.sites) > smaller:
        r.error("storage.site_quota_gb", f"{st.site_quota_gb} GB x {len(s.sites)} sites does not "
                f"fit on the smaller storage volume ({smaller} GB): one site could fill the "
                "space of another (R-GDPR-4)")


def _principals(r: ErrorList, s: Stack) -> None:
    if not s.ssh.principals:
        r.error("ssh.principals", "missing: at least one principal must be allowed to log in")
        return
    for role in ROLES:
        if not s.ssh.principals_for(role):
            r.error("ssh.principals", f"no principal may log in to role {role!r}")


def _exposure(r: ErrorList, s: Stack) -> None:
    e = s.exposure
    if s.environment == "preprod" and e.indexable:
        r.error("exposure.indexable", "preprod must not be publicly indexable (set false)")
    if e.indexable is False and not e.allow:
        r.error("exposure.allow", "missing: a non-indexable stack needs an IP allowlist")
    for i, n in enumerate(e.allow):
        if n is not None and n.prefixlen == 0:
            r.error(f"exposure.allow[{i}]", f"{n} allows everybody; list the admin networks")


def _monitoring(r: ErrorList, s: Stack) -> None:
    """The body marker becomes a blackbox regular expression (Go RE2): refuse what Python's re
    cannot even compile, and the look-arounds and backreferences RE2 does not have."""
    marker = s.monitoring.body_marker
    if not isinstance(marker, str):
        return
    try:
        re.compile(marker.replace("{site}", "site"))
    except re.error as exc:
        r.error("monitoring.body_marker", f"{marker!r} is not a regular expression: {exc}")
        return
    if re.search(r"\(\?<?[=!]|\\[1-9]", marker):
        r.error("monitoring.body_marker", f"{marker!r}: look-arounds and backreferences are not "
                "supported by the blackbox exporter (Go RE2)")


def _acme(r: ErrorList, s: Stack) -> None:
    """`acme:` (issue 14): a contact when on, every name inside the zone DNS-01 writes to, one
    lineage name per set and no name twice in a set (certbot refuses both later, less clearly)."""
    a = s.acme
    if a is None:
        return
    if a.enabled and a.email == "":
        r.error("acme.email", "missing: the ACME account's contact is required when enabled")
    if a.key_type == "ecdsa" and a.rsa_key_size != 2048:
        r.error("acme.rsa_key_size", "only with key_type: rsa")
    zone = s.ovh.dns_zone
    lineages: dict[str, int] = {}
    for i, cert in enumerate(a.certificates):
        where = f"acme.certificates[{i}]"
        for j, name in enumerate(cert.names):
            if zone and name.removeprefix("*.") != zone and not name.endswith("." + zone):
                r.error(f"{where}.names[{j}]", f"{name!r} is outside the DNS zone {zone!r} "
                        "(ovh.dns_zone: DNS-01 writes its TXT records there only)")
            if name in cert.names[:j]:
                r.error(f"{where}.names[{j}]", f"duplicate name {name!r}")
        lineage = cert.lineage
        if lineage and lineage in lineages:
            r.error(f"{where}.name", f"duplicate lineage {lineage!r} (already "
                    f"acme.certificates[{lineages[lineage]}]); give one a `name`")
        elif lineage:
            lineages[lineage] = i
