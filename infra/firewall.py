"""OVH's edge firewall (the "datacenter firewall" of R-GDPR-6) on every public IP.

It filters before traffic reaches the instance: site IPs accept HTTP(S) only, the bastion SSH
from the admin networks only, the proxy's own address nothing new; everything else is denied by
the last rule. The edge firewall is STATELESS: a host's own outgoing connections (apt, ACME,
OVH API, alert mail) need their answers let back in, hence the `established` TCP rule (a SYN
is never `established`, so it opens no port) and the DNS/NTP answer rules on the hosts' own
addresses. Site IPs only answer, so they need none of those.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network

import pulumi
import pulumi_ovh as ovh

from infra.addressing import block_of
from model.types import Stack

LAST = 19  # OVH keeps 20 rules per IP, sequences 0..19; the final deny takes the last one


@dataclass(frozen=True)
class EdgeRule:
    sequence: int
    action: str  # permit | deny
    protocol: str  # icmp | tcp | udp | ipv4 (all)
    why: str
    source: str | None = None  # CIDR; None = any
    destination_port: int | None = None
    source_port: int | None = None
    tcp_option: str | None = None  # established | syn


def _icmp() -> EdgeRule:
    return EdgeRule(0, "permit", "icmp", "path-MTU discovery and reachability checks")


def _answers() -> tuple[EdgeRule, ...]:
    return (EdgeRule(1, "permit", "tcp", "answers to the host's own TCP connections",
                     tcp_option="established"),
            EdgeRule(2, "permit", "udp", "DNS answers", source_port=53),
            EdgeRule(3, "permit", "udp", "NTP answers", source_port=123))


def _deny() -> EdgeRule:
    return EdgeRule(LAST, "deny", "ipv4", "everything else (R-GDPR-6)")


def _numbered(first: int, rules: list[EdgeRule], what: str) -> tuple[EdgeRule, ...]:
    if first + len(rules) > LAST:
        raise ValueError(f"{what}: {len(rules)} rules do not fit in OVH's edge firewall "
                         f"(sequences {first}..{LAST - 1})")
    return tuple(EdgeRule(first + i, r.action, r.protocol, r.why, r.source, r.destination_port,
                          r.source_port, r.tcp_option) for i, r in enumerate(rules))


def _v4(nets: tuple) -> list[str]:
    # The edge firewall is IPv4 only; IPv6 admin networks are handled by the security groups.
    return [str(n) for n in nets if isinstance(ip_network(str(n)), IPv4Network)]


def site_ip_rules(stack: Stack) -> tuple[EdgeRule, ...]:
    """HTTP(S) only; from anywhere when indexable (prod), from the allowlist otherwise."""
    sources: list[str | None] = ([None] if stack.exposure.indexable
                                 else list(_v4(stack.exposure.allow)))
    web = [EdgeRule(0, "permit", "tcp", "sites over HTTP(S) (R-HOST-1)", source=src,
                    destination_port=port) for src in sources for port in (80, 443)]
    return (_icmp(), *_numbered(1, web, "exposure.allow"), _deny())


def bastion_rules(stack: Stack) -> tuple[EdgeRule, ...]:
    """SSH from the admin networks only (R-GDPR-5, R-GDPR-6)."""
    ssh = [EdgeRule(0, "permit", "tcp", "SSH from an admin network", source=src,
                    destination_port=22) for src in _v4(stack.admin_networks)]
    return (_icmp(), *_answers(), *_numbered(4, ssh, "admin.networks"), _deny())


def proxy_rules() -> tuple[EdgeRule, ...]:
    """The proxy's own address serves nothing: sites are reached on their own IPs."""
    return (_icmp(), *_answers(), _deny())


def _protect(label: str, ip: pulumi.Input[str], ip_on_firewall: pulumi.Input[str],
             rules: tuple[EdgeRule, ...]) -> None:
    fw = ovh.ip.Firewall(f"edge-fw-{label}", ovh.ip.FirewallArgs(
        ip=ip, ip_on_firewall=ip_on_firewall, enabled=True))
    for r in rules:
        ovh.ip.FirewallRule(f"edge-fw-{label}-{r.sequence}", ovh.ip.FirewallRuleArgs(
            ip=ip, ip_on_firewall=ip_on_firewall, sequence=r.sequence, action=r.action,
            protocol=r.protocol, source=r.source, destination_port=r.destination_port,
            source_port=r.source_port, tcp_option=r.tcp_option,
        ), opts=pulumi.ResourceOptions(depends_on=[fw]))


def build_edge_firewall(stack: Stack, proxy_ip: pulumi.Output[str],
                        bastion_ip: pulumi.Output[str]) -> None:
    for site in stack.sites:
        _protect(f"site-{site.name}", str(block_of(stack, site.public_ip)), str(site.public_ip),
                 site_ip_rules(stack))
    _protect("proxy", proxy_ip.apply(lambda a: f"{a}/32"), proxy_ip, proxy_rules())
    _protect("ops", bastion_ip.apply(lambda a: f"{a}/32"), bastion_ip, bastion_rules(stack))
