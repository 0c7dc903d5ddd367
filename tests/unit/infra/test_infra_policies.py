"""Every policy rule, directly: one passing case (the real stacks' resources as built under the
mocks) and failing cases (the same resources with one thing broken)."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from infra import policies as P

Resources = list[dict[str, Any]]


def _view(builds: dict, env: str = "prod") -> tuple[Resources, P.PolicyContext]:
    stack, b = builds[env]
    return copy.deepcopy(b.policy_view()), P.context_from_stack(stack)


def _one(rs: Resources, token: str, name: str) -> dict[str, Any]:
    return next(r for r in rs if r["type"] == token and r["name"] == name)


def _broken(builds: dict, change: Callable[[Resources], None], env: str = "prod"
            ) -> tuple[Resources, P.PolicyContext]:
    rs, ctx = _view(builds, env)
    change(rs)
    return rs, ctx


def _sg_rule(port: int, source: str | None) -> dict[str, Any]:
    props = {"direction": "ingress", "protocol": "tcp", "ethertype": "IPv4",
             "portRangeMin": port, "portRangeMax": port, "securityGroupId": "sg"}
    if source is not None:
        props["remoteIpPrefix"] = source
    return {"type": P.SG_RULE, "name": f"extra-{port}", "props": props, "protect": False}


def _edge_rule(port: int | None, protocol: str = "tcp") -> dict[str, Any]:
    props = {"action": "permit", "protocol": protocol, "sequence": 5, "ip": "198.51.100.16/29",
             "ipOnFirewall": "198.51.100.17"}
    if port is not None:
        props["destinationPort"] = float(port)
    return {"type": P.EDGE_RULE, "name": "extra-edge", "props": props, "protect": False}


@pytest.mark.parametrize("env", ["prod", "preprod"])
def test_check_all_real_stacks_comply(builds, env):
    rs, ctx = _view(builds, env)
    assert P.check_all(rs, ctx) == {rule.name: [] for rule in P.RULES}


# -- french regions ------------------------------------------------------------------------
def test_check_french_regions_real_stack_passes(builds):
    assert P.check_french_regions(_view(builds)[0]) == []


def test_check_french_regions_canadian_instance_fails(builds):
    rs, _ = _broken(builds, lambda rs: _one(rs, P.INSTANCE, "vm-backup-b")["props"].update(
        region="BHS5"))
    assert P.check_french_regions(rs) == [
        "Instance vm-backup-b: region 'BHS5' is not in France (R-GDPR-7)"]


def test_check_french_regions_network_spanning_a_foreign_region_fails(builds):
    rs, _ = _broken(builds, lambda rs: _one(
        rs, "ovh:CloudProject/networkPrivate:NetworkPrivate", "vrack-network")["props"].update(
        regions=["GRA11", "DE1"]))
    assert P.check_french_regions(rs) == [
        "NetworkPrivate vrack-network: region 'DE1' is not in France (R-GDPR-7)"]


# -- world-open SSH ------------------------------------------------------------------------
def test_check_no_world_open_ssh_established_answers_rule_passes(builds):
    rs, _ = _view(builds)
    assert any(r["props"].get("tcpOption") == "established" for r in rs
               if r["type"] == P.EDGE_RULE)  # permitted from anywhere, yet opens no port
    assert P.check_no_world_open_ssh(rs) == []


@pytest.mark.parametrize("source", ["0.0.0.0/0", "::/0", None])
def test_check_no_world_open_ssh_security_group_rule_fails(builds, source):
    rs, _ = _broken(builds, lambda rs: rs.append(_sg_rule(22, source)))
    assert P.check_no_world_open_ssh(rs) == [
        "SecGroupRule extra-22: SSH (22) open to the whole Internet (R-GDPR-6)"]


@pytest.mark.parametrize("port,protocol", [(22, "tcp"), (None, "tcp"), (None, "ipv4")])
def test_check_no_world_open_ssh_edge_rule_without_source_fails(builds, port, protocol):
    rs, _ = _broken(builds, lambda rs: rs.append(_edge_rule(port, protocol)))
    assert P.check_no_world_open_ssh(rs) == [
        "FirewallRule extra-edge: edge firewall permits SSH (22) from anywhere (R-GDPR-6)"]


def test_check_no_world_open_ssh_port_range_covering_22_fails(builds):
    rule = _sg_rule(22, "0.0.0.0/0")
    rule["props"].update(portRangeMin=1, portRangeMax=1024)
    rs, _ = _broken(builds, lambda rs: rs.append(rule))
    assert len(P.check_no_world_open_ssh(rs)) == 1


# -- web and storage hosts: no public IP -----------------------------------------------------
def test_check_private_hosts_have_no_public_ip_real_stack_passes(builds):
    assert P.check_private_hosts_have_no_public_ip(_view(builds)[0]) == []


def test_check_private_hosts_have_no_public_ip_web_host_on_ext_net_fails(builds):
    rs, _ = _broken(builds, lambda rs: _one(rs, P.INSTANCE, "vm-web-villeparisis")["props"][
        "networks"].insert(0, {"name": "Ext-Net"}))
    assert P.check_private_hosts_have_no_public_ip(rs) == [
        "Instance vm-web-villeparisis: web host has a port on Ext-Net (R-HOST-1)"]


def test_check_private_hosts_have_no_public_ip_site_ip_routed_to_storage_fails(builds):
    def route_to_storage(rs: Resources) -> None:
        attach = next(r for r in rs if r["type"] == P.IP_ATTACH)
        attach["deps"]["routedTo"] = ["vm-backup-a"]
    rs, _ = _broken(builds, route_to_storage)
    assert len(P.check_private_hosts_have_no_public_ip(rs)) == 1


# -- each site its own IP ------------------------------------------------------------------
def test_check_each_site_has_own_ip_real_stack_passes(builds):
    assert P.check_each_site_has_own_ip(*_view(builds)) == []


def test_check_each_site_has_own_ip_shared_ip_fails(builds):
    rs, ctx = _broken(builds, lambda rs: _one(
        rs, P.DNS_RECORD, "dns-participation.villeparisis.fr")["props"].update(
        target="198.51.100.17"))
    assert P.check_each_site_has_own_ip(rs, ctx) == [
        "site participation: shares 198.51.100.17 with site villeparisis (R-HOST-2)"]


def test_check_each_site_has_own_ip_alias_on_another_ip_fails(builds):
    rs, ctx = _broken(builds, lambda rs: _one(
        rs, P.DNS_RECORD, "dns-www.villeparisis.fr")["props"].update(target="198.51.100.19"))
    assert P.check_each_site_has_own_ip(rs, ctx) == [
        "site villeparisis: its names resolve to ['198.51.100.17', '198.51.100.19'], not "
        "exactly one IP (R-HOST-2)"]


def test_check_each_site_has_own_ip_ip_not_attached_to_proxy_fails(builds):
    rs, ctx = _broken(builds, lambda rs: rs.remove(next(r for r in rs if r["type"] == P.IP_ATTACH)))
    assert P.check_each_site_has_own_ip(rs, ctx) == [
        "site villeparisis: 198.51.100.17 is not attached to the reverse proxy (R-HOST-1/2)",
        "site participation: 198.51.100.18 is not attached to the reverse proxy (R-HOST-1/2)"]


def test_check_each_site_has_own_ip_missing_record_fails(builds):
    rs, ctx = _broken(builds, lambda rs: rs.remove(_one(rs, P.DNS_RECORD,
                                                        "dns-www.villeparisis.fr")))
    assert P.check_each_site_has_own_ip(rs, ctx) == [
        "site villeparisis: no A record for www.villeparisis.fr"]


# -- storage protected -----------------------------------------------------------------------
def test_check_storage_protected_real_stack_passes(builds):
    assert P.check_storage_protected(_view(builds)[0]) == []


@pytest.mark.parametrize("token,name", [(P.INSTANCE, "vm-backup-b"), (P.VOLUME, "volume-backup-a")])
def test_check_storage_protected_unprotected_storage_fails(builds, token, name):
    rs, _ = _broken(builds, lambda rs: _one(rs, token, name).update(protect=False))
    assert P.check_storage_protected(rs) == [
        f"{token.rsplit(':', 1)[-1]} {name}: not protected (protect=True expected)"]


# -- preprod not indexable -------------------------------------------------------------------
def test_check_not_indexable_preprod_allowlisted_passes(builds):
    assert P.check_not_indexable(*_view(builds, "preprod")) == []


def test_check_not_indexable_prod_open_to_all_is_not_concerned(builds):
    assert P.check_not_indexable(*_view(builds, "prod")) == []


def test_check_not_indexable_preprod_security_group_open_to_world_fails(builds):
    rs, ctx = _broken(builds, lambda rs: rs.append(_sg_rule(443, "0.0.0.0/0")), "preprod")
    assert P.check_not_indexable(rs, ctx) == [
        "SecGroupRule extra-443: port 443 open to the whole Internet in a non-indexable stack"]


def test_check_not_indexable_preprod_edge_firewall_open_to_world_fails(builds):
    rs, ctx = _broken(builds, lambda rs: rs.append(_edge_rule(80)), "preprod")
    assert P.check_not_indexable(rs, ctx) == [
        "FirewallRule extra-edge: edge firewall permits port 80 from anywhere in a "
        "non-indexable stack"]


def test_check_not_indexable_prod_resources_under_preprod_model_fail(builds):
    rs, _ = _view(builds, "prod")
    _, ctx = _view(builds, "preprod")
    problems = P.check_not_indexable(rs, ctx)
    assert "SecGroupRule sg-proxy-GRA11-tcp443-0.0.0.0-0: port 443 open to the whole Internet " \
           "in a non-indexable stack" in problems
    assert len([p for p in problems if "metadata indexable='true'" in p]) == 6


# -- edge firewall on site IPs ---------------------------------------------------------------
def test_check_edge_firewall_on_site_ips_real_stack_passes(builds):
    assert P.check_edge_firewall_on_site_ips(*_view(builds)) == []


def test_check_edge_firewall_on_site_ips_missing_final_deny_fails(builds):
    rs, ctx = _broken(builds, lambda rs: rs.remove(_one(rs, P.EDGE_RULE,
                                                        "edge-fw-site-participation-19")))
    assert P.check_edge_firewall_on_site_ips(rs, ctx) == [
        "site IP 198.51.100.18: no enabled edge firewall ending in a deny-all rule (R-GDPR-6)"]


def test_check_edge_firewall_on_site_ips_disabled_firewall_fails(builds):
    rs, ctx = _broken(builds, lambda rs: _one(rs, P.EDGE_FIREWALL, "edge-fw-site-villeparisis")[
        "props"].update(enabled=False))
    assert len(P.check_edge_firewall_on_site_ips(rs, ctx)) == 1


# -- values unknown at preview ---------------------------------------------------------------
def test_check_all_unknown_values_at_preview_raise_nothing(builds):
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    rs, ctx = _view(builds)
    for r in rs:
        for key in ("networks", "metadata", "regions", "remoteIpPrefix", "block"):
            if key in r["props"]:
                r["props"][key] = unknown
    result = P.check_all(rs, ctx)
    assert result["french-regions-only"] == result["no-world-open-ssh"] == []
