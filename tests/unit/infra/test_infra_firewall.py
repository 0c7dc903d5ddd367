"""Exact rules: OVH's edge firewall on every public IP and the security groups per role."""
from __future__ import annotations

import dataclasses
from ipaddress import ip_network

import pytest

from infra.firewall import bastion_rules, site_ip_rules
from infra.mockrun import MockBuild
from model.types import Stack

from .conftest import stack_of

EDGE = "ovh:Ip/firewall:Firewall"
EDGE_RULE = "ovh:Ip/firewallRule:FirewallRule"
SG = "openstack:networking/secGroup:SecGroup"
SG_RULE = "openstack:networking/secGroupRule:SecGroupRule"
ANSWERS = {(1, "permit", "tcp", None, None, None, "established"),
           (2, "permit", "udp", None, None, 53.0, None),
           (3, "permit", "udp", None, None, 123.0, None)}
ICMP, DENY = (0, "permit", "icmp", None, None, None, None), (19, "deny", "ipv4", None, None,
                                                              None, None)


def _edge(b: MockBuild, ip_on_firewall: str) -> set[tuple]:
    return {(p["sequence"], p["action"], p["protocol"], p.get("source"), p.get("destinationPort"),
             p.get("sourcePort"), p.get("tcpOption"))
            for r in b.of_type(EDGE_RULE) if (p := r.inputs)["ipOnFirewall"] == ip_on_firewall}


def _public_ip(b: MockBuild, host: str) -> str:
    vm = b.get("openstack:compute/instance:Instance", f"vm-{host}")
    return next(n["fixedIpV4"] for n in vm.state["networks"] if n.get("name") == "Ext-Net")


def test_edge_firewall_prod_site_ips_permit_http_https_from_anywhere_then_deny(builds):
    stack, b = builds["prod"]
    for site in stack.sites:
        assert _edge(b, str(site.public_ip)) == {
            ICMP, (1, "permit", "tcp", None, 80.0, None, None),
            (2, "permit", "tcp", None, 443.0, None, None), DENY}


def test_edge_firewall_preprod_site_ips_permit_http_https_from_allowlist_only(builds):
    stack, b = builds["preprod"]
    allow = "203.0.113.8/29"
    assert [str(n) for n in stack.exposure.allow] == [allow]
    for site in stack.sites:
        assert _edge(b, str(site.public_ip)) == {
            ICMP, (1, "permit", "tcp", allow, 80.0, None, None),
            (2, "permit", "tcp", allow, 443.0, None, None), DENY}


def test_edge_firewall_bastion_ip_permits_ssh_from_admin_networks_only(built):
    stack, b = built
    assert _edge(b, _public_ip(b, "ops")) == {
        ICMP, *ANSWERS, (4, "permit", "tcp", "203.0.113.8/29", 22.0, None, None), DENY}
    assert [str(n) for n in stack.admin_networks] == ["203.0.113.8/29"]


def test_edge_firewall_proxy_own_ip_opens_no_port(built):
    _, b = built
    assert _edge(b, _public_ip(b, "proxy")) == {ICMP, *ANSWERS, DENY}


def test_edge_firewall_every_public_ip_enabled_on_its_block(built):
    stack, b = built
    firewalls = {r.inputs["ipOnFirewall"]: (r.inputs["ip"], r.inputs["enabled"])
                 for r in b.of_type(EDGE)}
    block = str(stack.network.public_ip_blocks[0])
    expected = {str(s.public_ip): (block, True) for s in stack.sites}
    for host in ("proxy", "ops"):
        expected[_public_ip(b, host)] = (f"{_public_ip(b, host)}/32", True)
    assert firewalls == expected
    rules_ip = {(r.inputs["ipOnFirewall"], r.inputs["ip"]) for r in b.of_type(EDGE_RULE)}
    assert rules_ip == {(k, v[0]) for k, v in expected.items()}


def test_bastion_rules_too_many_admin_networks_raise():
    # The model already refuses this config (model.rules); the program keeps its own guard
    # for stacks built another way, so build the over-long list past the parser.
    stack = stack_of("prod")
    stack = dataclasses.replace(stack, admin_networks=tuple(
        ip_network(f"203.0.{i}.0/24") for i in range(100, 116)))
    with pytest.raises(ValueError, match="admin.networks: 16 rules do not fit"):
        bastion_rules(stack)


def test_site_ip_rules_ipv6_allowlist_entries_skipped_at_the_ipv4_edge():
    stack = stack_of("preprod")
    stack = dataclasses.replace(stack, exposure=dataclasses.replace(
        stack.exposure, allow=(*stack.exposure.allow, ip_network("2001:db8::/32"))))
    sources = {r.source for r in site_ip_rules(stack) if r.destination_port}
    assert sources == {"203.0.113.8/29"}


def _sg_rules(b: MockBuild) -> dict[str, set[tuple]]:
    names = {f"{r.name}-id": r.name for r in b.of_type(SG)}
    out: dict[str, set[tuple]] = {}
    for r in b.of_type(SG_RULE):
        p = r.inputs
        assert (p["direction"], p["protocol"], p["ethertype"]) == ("ingress", "tcp", "IPv4")
        assert p["portRangeMin"] == p["portRangeMax"]
        assert p["region"] == b.get(SG, names[p["securityGroupId"]]).inputs["region"]
        out.setdefault(names[p["securityGroupId"]], set()).add(
            (int(p["portRangeMin"]), p["remoteIpPrefix"]))
    return out


def _expected_groups(stack: Stack) -> dict[str, set[tuple]]:
    net = stack.network.private_cidr.network_address
    proxy, ops = f"{net + 10}/32", f"{net + 11}/32"
    web = "0.0.0.0/0" if stack.exposure.indexable else "203.0.113.8/29"
    storage = {(22, ops), (22, f"{net + 100}/31"), (9100, ops)}  # web hosts .100 and .101
    return {
        "sg-proxy-GRA11": {(80, web), (443, web), (22, ops), (9100, ops)},
        "sg-ops-GRA11": {(22, "203.0.113.8/29")},
        "sg-web-GRA11": {(80, proxy), (22, ops), (9100, ops)},
        "sg-storage-GRA11": storage,
        "sg-storage-SBG5": storage,
    }


def test_security_groups_exact_ports_and_sources_per_role(built):
    stack, b = built
    assert _sg_rules(b) == _expected_groups(stack)


def test_security_groups_named_per_environment_and_role(built):
    stack, b = built
    assert {r.name: (r.inputs["name"], r.inputs["region"]) for r in b.of_type(SG)} == {
        f"sg-{role}-{region}": (f"hosting-{stack.environment}-{role}", region)
        for role, region in (("proxy", "GRA11"), ("ops", "GRA11"), ("web", "GRA11"),
                             ("storage", "GRA11"), ("storage", "SBG5"))}
