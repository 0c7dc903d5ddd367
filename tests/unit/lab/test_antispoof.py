"""lab.antispoof: the bridge ruleset that keeps a lab host from forging another's MAC, IPv4
source or ARP claim (issue 19, R-GDPR-2, R-GDPR-4), as plain data; `nft -c` on it when root and
nft are there (a check only: nothing is loaded)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from ipaddress import IPv4Address, IPv4Interface

import pytest

from lab import antispoof
from lab.antispoof import PortGuard, drop_counts, removal, ruleset, table_name, table_names
from lab.network import Port, guards, mac_for

PROXY_PUB = Port("hl-pub", "hl00pub", "pub0", IPv4Interface("198.51.100.10/26"),
                 (IPv4Address("198.51.100.16"), IPv4Address("198.51.100.17")))
PROXY_PRV = Port("hl-prv", "hl00prv", "priv0", IPv4Interface("10.77.0.10/24"))
WEB_PRV = Port("hl-prv", "hl02prv", "priv0", IPv4Interface("10.77.0.100/24"))


def chain(text: str, outer: str) -> list[str]:
    """The rule lines of one port's chain."""
    lines = text.splitlines()
    start = lines.index(f"\tchain port-{outer} {{")
    end = lines.index("\t}", start)
    return [line.strip() for line in lines[start + 1:end]]


def test_guards_ports_allow_own_mac_and_every_own_address() -> None:
    g = guards((PROXY_PUB, PROXY_PRV))
    assert g[0] == PortGuard("hl00pub", mac_for(IPv4Address("198.51.100.10")),
                             tuple(IPv4Address(a) for a in
                                   ("198.51.100.10", "198.51.100.16", "198.51.100.17")))
    assert g[1] == PortGuard("hl00prv", mac_for(IPv4Address("10.77.0.10")),
                             (IPv4Address("10.77.0.10"),))


def test_ruleset_each_port_jumps_to_its_own_chain_from_bridge_prerouting() -> None:
    text = ruleset("antispoof-hl-proxy", guards((PROXY_PUB, PROXY_PRV)))
    assert text.startswith("table bridge antispoof-hl-proxy\n"
                           "delete table bridge antispoof-hl-proxy\n")
    assert "type filter hook prerouting priority filter; policy accept;" in text
    assert '\t\tiifname "hl00pub" jump port-hl00pub' in text
    assert '\t\tiifname "hl00prv" jump port-hl00prv' in text


def test_ruleset_port_chain_drops_foreign_mac_first_then_allows_only_own_sources() -> None:
    text = ruleset("antispoof-hl-web", guards((WEB_PRV,)))
    mac = mac_for(IPv4Address("10.77.0.100"))
    rules = chain(text, "hl02prv")
    assert rules[0] == f'ether saddr != {mac} counter drop comment "forged source MAC"'
    assert rules[1] == "ip saddr { 10.77.0.100 } accept"
    assert f"arp saddr ether {mac} arp saddr ip {{ 10.77.0.100 }} accept" in rules[2]
    assert rules[3].endswith("arp operation request arp saddr ip 0.0.0.0 accept")
    # Whatever was not accepted above is dropped and counted: IPv4, ARP, anything else.
    assert rules[4:] == ['ether type ip counter drop comment "forged source address"',
                         'ether type arp counter drop comment "forged ARP"',
                         'counter drop comment "neither IPv4 nor ARP"']


def test_ruleset_proxy_public_port_allows_its_site_ips_and_no_private_address() -> None:
    rules = chain(ruleset("antispoof-hl-proxy", guards((PROXY_PUB, PROXY_PRV))), "hl00pub")
    assert rules[1] == "ip saddr { 198.51.100.10, 198.51.100.16, 198.51.100.17 } accept"
    assert "10.77.0.10" not in "\n".join(rules)


def test_ruleset_no_port_is_refused() -> None:
    with pytest.raises(ValueError, match="no port to guard"):
        ruleset("antispoof-hl-web", [])


def test_ruleset_same_port_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        ruleset("antispoof-hl-web", guards((WEB_PRV, WEB_PRV)))


def test_portguard_name_that_could_inject_rules_is_refused() -> None:
    with pytest.raises(ValueError, match="port name"):
        PortGuard('x" accept; #', "02:4c:0a:4d:00:64", (IPv4Address("10.77.0.100"),))


def test_portguard_bad_mac_is_refused_naming_the_port() -> None:
    with pytest.raises(ValueError, match="port hl02prv: mac"):
        PortGuard("hl02prv", "02:4C:0A:4D:00:64 accept", (IPv4Address("10.77.0.100"),))


def test_portguard_without_address_is_refused() -> None:
    with pytest.raises(ValueError, match="no address"):
        PortGuard("hl02prv", "02:4c:0a:4d:00:64", ())


def test_table_name_carries_the_namespace_so_labs_do_not_share_tables() -> None:
    assert table_name("hl-web-villeparisis") == "antispoof-hl-web-villeparisis"
    assert table_name("h6-web-villeparisis") != table_name("hl-web-villeparisis")
    with pytest.raises(ValueError, match="namespace"):
        table_name("hl web")


def test_removal_never_fails_whether_or_not_the_table_exists() -> None:
    assert removal("antispoof-hl-web") == ("table bridge antispoof-hl-web\n"
                                           "delete table bridge antispoof-hl-web\n")


def test_table_names_only_this_labs_prefix_is_listed() -> None:
    listing = json.dumps({"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"table": {"family": "bridge", "name": "antispoof-hl-proxy", "handle": 1}},
        {"table": {"family": "bridge", "name": "antispoof-hlx-proxy", "handle": 2}},
        {"table": {"family": "bridge", "name": "antispoof-hl-web-a", "handle": 3}},
        {"table": {"family": "bridge", "name": "someone-else", "handle": 4}},
    ]})
    assert table_names(listing, "hl") == ["antispoof-hl-proxy", "antispoof-hl-web-a"]


def test_drop_counts_packets_are_summed_per_port_and_reason() -> None:
    def rule(chain: str, comment: str | None, packets: int) -> dict:
        r = {"family": "bridge", "table": "t", "chain": chain, "handle": 9,
             "expr": [{"counter": {"packets": packets, "bytes": 40 * packets}}, {"drop": None}]}
        if comment:
            r["comment"] = comment
        return {"rule": r}

    listing = json.dumps({"nftables": [
        rule("prerouting", None, 0),
        rule("port-hl02prv", antispoof.FORGED_IP, 3),
        rule("port-hl02prv", antispoof.FORGED_ARP, 2),
        rule("port-hl00prv", antispoof.FORGED_MAC, 1),
    ]})
    counts = drop_counts(listing)
    assert counts["hl02prv"][antispoof.FORGED_IP] == 3
    assert counts["hl02prv"][antispoof.FORGED_ARP] == 2
    assert counts["hl02prv"][antispoof.FORGED_MAC] == 0
    assert counts["hl00prv"][antispoof.FORGED_MAC] == 1


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                    reason="nft -c needs root and nftables")
def test_ruleset_nft_check_accepts_it() -> None:
    text = ruleset("antispoof-unittest-proxy", guards((PROXY_PUB, PROXY_PRV)))
    result = subprocess.run(["nft", "-c", "-f", "-"], input=text, text=True,
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr


# -- lab.network keeps the table with the host's ports (no root: the machine is faked) ------
def _fake_machine(monkeypatch: pytest.MonkeyPatch, *, table: bool) -> list[tuple]:
    from lab import network

    calls: list[tuple] = []
    inner = {"priv0": {"ifname": "priv0", "flags": ["UP"], "addr_info": [
        {"family": "inet", "local": "10.77.0.100", "prefixlen": 24}]}}
    outer = {"hl02prv": {"ifname": "hl02prv", "flags": ["UP"], "master": "hl-prv"}}
    monkeypatch.setattr(network, "netns_exists", lambda ns: True)
    monkeypatch.setattr(network, "_ns_links", lambda ns: inner)
    monkeypatch.setattr(network, "_links", lambda: outer)
    monkeypatch.setattr(network, "run", lambda argv, **kw: calls.append(("run", *argv)))
    monkeypatch.setattr(antispoof, "exists", lambda ns: table)
    monkeypatch.setattr(antispoof, "apply", lambda ns, g: calls.append(("apply", ns, *g)))
    monkeypatch.setattr(antispoof, "remove", lambda ns: calls.append(("remove", ns)))
    return calls


def test_host_network_state_table_loaded_is_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.network import host_network_state

    _fake_machine(monkeypatch, table=True)
    assert host_network_state("hl-web-a", (WEB_PRV,)) == "ok"


def test_host_network_state_table_gone_asks_for_a_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.network import host_network_state

    _fake_machine(monkeypatch, table=False)
    assert host_network_state("hl-web-a", (WEB_PRV,)) == "addresses"


def test_sync_addresses_reloads_the_table_with_the_new_addresses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.network import sync_addresses

    calls = _fake_machine(monkeypatch, table=True)
    port = Port("hl-prv", "hl02prv", "priv0", IPv4Interface("10.77.0.100/24"),
                (IPv4Address("10.77.0.200"),))
    sync_addresses("hl-web-a", (port,))
    assert ("run", "ip", "-n", "hl-web-a", "addr", "add", "10.77.0.200/32", "dev",
            "priv0") in calls
    assert calls[-1] == ("apply", "hl-web-a", *guards((port,)))


def test_delete_host_network_removes_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from lab import network

    calls = _fake_machine(monkeypatch, table=True)
    monkeypatch.setattr(network, "netns_exists", lambda ns: False)
    network.delete_host_network("hl-web-a", ())
    assert calls == [("remove", "hl-web-a")]
