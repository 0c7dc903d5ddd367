"""Security groups per role: each host's OpenStack ports open only what its role needs (R-GDPR-6).

Sources are exact: one host's /32 (the proxy, the bastion), the web hosts' collapsed addresses,
the admin networks, or -- for HTTP(S) in an indexable environment only -- the whole Internet.
Egress keeps OpenStack's default allow rules: hosts must reach Debian mirrors, the storage
servers and the OVH API; each host's own nftables narrows that further (roles/).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi_openstack as openstack

from infra.addressing import host_prefix, web_prefixes
from infra.providers import os_opts
from model.topology import plan_hosts
from model.types import Role, Stack

MONITORING_PORT = 9100  # node exporter, scraped by ops (R-HOST-4)
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class SgRule:
    port: int
    source: str  # CIDR, IPv4 or IPv6
    why: str
    protocol: str = "tcp"

    @property
    def ethertype(self) -> str:
        return "IPv6" if ":" in self.source else "IPv4"


def web_sources(stack: Stack) -> tuple[str, ...]:
    """Who may reach the sites over HTTP(S): everybody in prod; in a non-indexable environment
    (preprod) only the allowlist, so search engines never see it."""
    if stack.exposure.indexable:
        return (ANYWHERE,)
    return tuple(str(n) for n in stack.exposure.allow)


def plan_rules(stack: Stack, role: Role) -> tuple[SgRule, ...]:
    ops = host_prefix(stack, "ops")
    from_ops = (SgRule(22, ops, "SSH through the bastion only (R-GDPR-5)"),
                SgRule(MONITORING_PORT, ops, "metrics scraped by ops (R-HOST-4)"))
    if role == "proxy":
        return (*(SgRule(port, src, "sites over HTTP(S) through the reverse proxy (R-HOST-1)")
                  for src in web_sources(stack) for port in (80, 443)), *from_ops)
    if role == "ops":
        return tuple(SgRule(22, str(n), "SSH to the bastion from admin networks only (R-GDPR-6)")
                     for n in stack.admin_networks)
    if role == "web":
        return (SgRule(80, host_prefix(stack, "proxy"), "HTTP from the reverse proxy only "
                       "(R-HOST-1)"), *from_ops)
    return (from_ops[0],
            *(SgRule(22, p, "backups pushed over SSH by the web hosts (R-BKP-2/3, R-BKP-7)")
              for p in web_prefixes(stack)),
            from_ops[1])


def group_name(stack: Stack, role: Role) -> str:
    return f"hosting-{stack.environment}-{role}"


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z.]+", "-", text).strip("-")


def build_security_groups(stack: Stack, provider: openstack.Provider
                          ) -> dict[tuple[str, Role], openstack.networking.SecGroup]:
    """One group per (region, role) that has hosts there; security groups are regional."""
    groups: dict[tuple[str, Role], openstack.networking.SecGroup] = {}
    for region, role in dict.fromkeys((h.region, h.role) for h in plan_hosts(stack)):
        sg = openstack.networking.SecGroup(f"sg-{role}-{region}", openstack.networking.SecGroupArgs(
            name=group_name(stack, role), region=region,
            description=f"hosting {stack.environment}: {role} (infra/security_groups.py)",
        ), opts=os_opts(provider))
        for rule in plan_rules(stack, role):
            openstack.networking.SecGroupRule(
                f"sg-{role}-{region}-{rule.protocol}{rule.port}-{_slug(rule.source)}",
                openstack.networking.SecGroupRuleArgs(
                    security_group_id=sg.id, region=region, direction="ingress",
                    ethertype=rule.ethertype, protocol=rule.protocol,
                    port_range_min=rule.port, port_range_max=rule.port,
                    remote_ip_prefix=rule.source, description=rule.why,
                ), opts=os_opts(provider))
        groups[(region, role)] = sg
    return groups
