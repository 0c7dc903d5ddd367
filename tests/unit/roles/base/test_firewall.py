"""The baseline's nftables: each role's openings exactly, rendered from a real inventory and
validated by the real `nft -c -f` in a throwaway network namespace."""
from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from engine.inventory import Inventory
from engine.resources import File, Probe, Service
from engine.role import HostContext
from roles.base import firewall
from roles.base.firewall import Rule, rules_for

ALL = ("proxy", "ops", "web-villeparisis", "web-participation", "backup-a", "backup-b")


def openings(inv: Inventory, host: str) -> set[tuple[tuple[int, ...], tuple[str, ...],
                                                     tuple[str, ...]]]:
    return {(r.ports, r.sources, r.destinations) for r in rules_for(inv, inv.host(host))}


def ip(inv: Inventory, name: str) -> str:
    return inv.host(name).private_ip


def test_rules_for_bastion_ssh_from_the_admin_networks_only(prod: Inventory) -> None:
    others = tuple(h.private_ip for h in prod.hosts if h.name != "ops")
    # 22 from the admin networks; 6514 (central logging, issue 17) from the other hosts only
    assert openings(prod, "ops") == {((22,), ("203.0.113.8/29",), ()), ((6514,), others, ())}


def test_rules_for_proxy_sites_on_their_ips_ssh_and_metrics_from_the_bastion(
        prod: Inventory) -> None:
    ops = ip(prod, "ops")
    assert openings(prod, "proxy") == {
        ((22,), (ops,), ()),
        ((80, 443), (), ("198.51.100.17", "198.51.100.18")),
        ((9100,), (ops,), ()),
    }


def test_rules_for_preprod_proxy_serves_only_the_allowed_networks(preprod: Inventory) -> None:
    web, probes = [r for r in rules_for(preprod, preprod.host("proxy")) if 443 in r.ports]
    assert web.sources == ("203.0.113.8/29",)
    assert web.destinations == ("198.51.100.25", "198.51.100.26")
    # the monitoring's site probes come from the bastion's public address (issue 13)
    assert probes.sources == (preprod.host("ops").public_ip,)
    assert probes.destinations == web.destinations


def test_rules_for_prod_proxy_no_probe_rule_sites_open_to_all(prod: Inventory) -> None:
    assert [r.sources for r in rules_for(prod, prod.host("proxy")) if 443 in r.ports] == [()]


@pytest.mark.parametrize("host", ["web-villeparisis", "web-participation"])
def test_rules_for_web_https_from_the_proxy_only(prod: Inventory, host: str) -> None:
    ops, proxy = ip(prod, "ops"), ip(prod, "proxy")
    assert openings(prod, host) == {((22,), (ops,), ()), ((443,), (proxy,), ()),
                                    ((9100,), (ops,), ())}


@pytest.mark.parametrize("host", ["backup-a", "backup-b"])
def test_rules_for_storage_ssh_from_the_web_hosts_and_the_bastion(prod: Inventory,
                                                                  host: str) -> None:
    ops = ip(prod, "ops")
    webs = (ip(prod, "web-villeparisis"), ip(prod, "web-participation"))
    assert openings(prod, host) == {((22,), (ops,), ()), ((22,), webs, ()),
                                    ((9100,), (ops,), ())}


def test_rules_for_no_host_but_the_proxy_opens_http_and_no_rule_is_open_to_all(
        prod: Inventory) -> None:
    for name in ALL:
        for r in rules_for(prod, prod.host(name)):
            assert r.sources or r.destinations, (name, r)
            if {80, 443} & set(r.ports) and name != "proxy":
                assert r.sources == (ip(prod, "proxy"),)


def test_rules_for_bastion_without_admin_networks_is_refused(prod: Inventory) -> None:
    doc = {**prod.doc, "admin_networks": []}
    broken = Inventory(doc, prod.hosts)
    with pytest.raises(ValueError, match="admin_networks"):
        rules_for(broken, broken.host("ops"))


def test_rule_nft_one_line_per_address_family() -> None:
    r = Rule("ssh", (22,), ("203.0.113.8/29", "2001:db8::/48"))
    assert r.nft() == ["ip saddr { 203.0.113.8/29 } tcp dport { 22 } accept",
                       "ip6 saddr { 2001:db8::/48 } tcp dport { 22 } accept"]


def test_rule_nft_destinations_and_sorted_ports() -> None:
    r = Rule("web", (443, 80), (), ("198.51.100.17",))
    assert r.nft() == ["ip daddr { 198.51.100.17 } tcp dport { 80, 443 } accept"]


@pytest.mark.parametrize("host", ALL)
def test_ruleset_rendered_for_each_host_passes_nft_c(
        host: str, ctx_for: Callable[..., HostContext],
        nft_check: Callable[[str], subprocess.CompletedProcess[str]]) -> None:
    proc = nft_check(firewall.ruleset(ctx_for(host)))
    assert proc.returncode == 0, proc.stderr


def test_ruleset_nft_c_rejects_a_broken_ruleset(
        nft_check: Callable[[str], subprocess.CompletedProcess[str]],
        ctx_for: Callable[..., HostContext]) -> None:
    broken = firewall.ruleset(ctx_for("proxy")).replace("tcp dport", "tcp dprot", 1)
    assert nft_check(broken).returncode != 0


def test_ruleset_is_one_transaction_default_deny_with_established_and_loopback(
        ctx_for: Callable[..., HostContext]) -> None:
    text = firewall.ruleset(ctx_for("web-villeparisis"))
    body = [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]
    assert body[0] == "flush ruleset"
    assert "type filter hook input priority filter; policy drop;" in body
    assert "type filter hook forward priority filter; policy drop;" in body
    assert body.index("ct state established,related accept") < body.index(
        "ip saddr { 10.20.0.11 } tcp dport { 22 } accept")
    assert 'iif "lo" accept' in body
    assert any("icmp type echo-request limit rate" in line for line in body)


def test_resources_validated_applied_by_handler_and_drift_probed(
        ctx_for: Callable[..., HostContext]) -> None:
    conf, probe, service = firewall.resources(ctx_for("proxy"))
    assert isinstance(conf, File) and conf.path == "/etc/nftables.conf"
    assert conf.validate == "/usr/sbin/nft -c -f {}" and conf.notify == ("reload-nftables",)
    assert isinstance(probe, Probe) and probe.notify == ("reload-nftables",)
    assert isinstance(service, Service) and service.unit == "nftables.service"
    script = firewall.HANDLER.argv[-1]
    assert script.startswith("nft -f /etc/nftables.conf && ")
    assert script.endswith("nft -s list ruleset > /var/lib/hosting/nftables.applied")
