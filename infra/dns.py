"""DNS: every site domain and alias -> the site's own public IP (A records, R-HOST-2).

OVH pitfalls (DESIGN.md): a record is served only after the zone is refreshed. The provider
refreshes the zone after each change, but if the API credentials lack
`POST /domain/zone/*/refresh` it only logs a warning and the record is never published -- the
credentials must grant it (docs/infra.md), and the `dns_records` stack output lets a post-`up`
check (`dig`) compare what is served with what was declared. Records are added, never
"updated": an existing record for the same name (OVH's default apex A record) must be imported
or deleted first, or both answer.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi_ovh as ovh

from model.types import Stack

# The site IPs are Additional IPs that move with the proxy (a re-attach, not a DNS change), so
# records rarely change: an hour keeps resolver load low; a new proxy keeps the same IPs.
TTL = 3600


@dataclass(frozen=True)
class DnsRecord:
    name: str  # fully qualified
    subdomain: str | None  # relative to the zone; None for the zone apex
    target: str
    site: str


def plan_records(stack: Stack) -> tuple[DnsRecord, ...]:
    zone = stack.ovh.dns_zone
    records = []
    for site in stack.sites:
        for name in site.names:
            sub = None if name == zone else name.removesuffix("." + zone)
            records.append(DnsRecord(name, sub, str(site.public_ip), site.name))
    return tuple(records)


def build_dns(stack: Stack) -> dict[str, str]:
    """Create the records; return name -> IP for the `dns_records` output."""
    for r in plan_records(stack):
        ovh.domain.ZoneRecord(f"dns-{r.name}", ovh.domain.ZoneRecordArgs(
            zone=stack.ovh.dns_zone, subdomain=r.subdomain, fieldtype="A", target=r.target,
            ttl=TTL))
    return {r.name: r.target for r in plan_records(stack)}
