"""The verify suite's firewall reader (tests/verify/firewall_matrix.py) and checks
(tests/verify/test_firewall.py) on real `nft -j list ruleset` output of the six lab hosts
(data/lab_firewall.json, captured from a deployed lab with its inventory), and the mutation
proofs of issue 17: each broken copy (accept-all, a port open to any source, a wider source, a
missing opening, rules the reader cannot scope, a probe answered where it should be dropped)
makes the verify check itself fail."""
from __future__ import annotations

import copy
import json
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from tests.verify import firewall_matrix as fm
from tests.verify import test_firewall as tf

DATA = json.loads((Path(__file__).parent / "data" / "lab_firewall.json").read_text())
INV = DATA["inventory"]


def entry(name: str) -> dict[str, Any]:
    return next(h for h in INV["hosts"] if h["name"] == name)


def ruleset(name: str) -> dict[str, Any]:
    return copy.deepcopy(DATA["rulesets"][name])


def rules(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [x["rule"] for x in doc["nftables"] if "rule" in x]


def add_rule(doc: dict[str, Any], *expr: dict[str, Any]) -> dict[str, Any]:
    doc["nftables"].append({"rule": {"family": "inet", "table": "filter", "chain": "input",
                                     "handle": 999, "expr": list(expr)}})
    return doc


def match(protocol: str, fld: str, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": {"payload": {"protocol": protocol, "field": fld}},
                      "right": right}}


ACCEPT = {"accept": None}


class FakeHost:
    """What test_firewall's checks ask of a testinfra host: `nft -j list ruleset`."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def check_output(self, command: str) -> str:
        assert command == "nft -j list ruleset"
        return json.dumps(self.doc)


def problems_of(name: str, doc: dict[str, Any]) -> list[str]:
    live = fm.read_ruleset(doc)
    return live.problems + fm.compare(live.openings, fm.expected_openings(INV, entry(name)))


@pytest.mark.parametrize("name", [h["name"] for h in INV["hosts"]])
def test_openings_check_deployed_lab_ruleset_passes(name):
    tf.test_nftables_openings_are_exactly_the_matrix(FakeHost(ruleset(name)), entry(name), INV)


def test_openings_check_accept_all_rule_fails():
    # The example: policy drop stays, one bare `accept` opens everything.
    doc = add_rule(ruleset("web-villeparisis"), ACCEPT)
    tf.test_nftables_input_chain_policy_drop(FakeHost(doc))  # the old check: still passes
    with pytest.raises(AssertionError, match=r"\*/\* to \* open to 0.0.0.0/0, ::/0 beyond"):
        tf.test_nftables_openings_are_exactly_the_matrix(FakeHost(doc),
                                                         entry("web-villeparisis"), INV)


def test_openings_check_port_open_to_any_source_fails():
    doc = add_rule(ruleset("backup-a"), match("tcp", "dport", 22), ACCEPT)
    assert problems_of("backup-a", doc) == ["tcp/22 to * open to 0.0.0.0/0, ::/0 beyond the matrix"]


def test_openings_check_wider_source_fails():
    doc = ruleset("web-participation")
    for r in rules(doc):
        if r["expr"][0].get("match", {}).get("right") == "10.76.0.10":  # the proxy -> 443
            r["expr"][0]["match"]["right"] = {"prefix": {"addr": "10.76.0.0", "len": 24}}
    assert problems_of("web-participation", doc) == [
        "tcp/443 to * open to 10.76.0.0/24 beyond the matrix"]


def test_openings_check_extra_port_from_the_right_source_fails():
    doc = add_rule(ruleset("web-villeparisis"), match("ip", "saddr", "10.76.0.10"),
                   match("tcp", "dport", 3306), ACCEPT)
    assert problems_of("web-villeparisis", doc) == [
        "tcp/3306 to * open to 10.76.0.10/32 beyond the matrix"]


def test_openings_check_missing_opening_fails():
    doc = ruleset("web-villeparisis")
    doc["nftables"] = [x for x in doc["nftables"] if "rule" not in x
                       or x["rule"]["expr"][0].get("match", {}).get("right") != "10.76.0.10"]
    assert problems_of("web-villeparisis", doc) == ["tcp/443 to * not open to 10.76.0.10/32"]


def test_openings_check_site_ports_on_the_private_address_fail():
    # 80/443 on the proxy are for its site IPs only, not for every address it has.
    doc = ruleset("proxy")
    for r in rules(doc):
        if r["expr"][0].get("match", {}).get("left", {}).get("payload", {}).get("field") == \
                "daddr":
            del r["expr"][0]
    assert set(problems_of("proxy", doc)) == {
        "tcp/80 to * open to 0.0.0.0/0, ::/0 beyond the matrix",
        "tcp/443 to * open to 0.0.0.0/0, ::/0 beyond the matrix",
        "tcp/80 to 198.51.100.208 not open to 0.0.0.0/0",
        "tcp/80 to 198.51.100.209 not open to 0.0.0.0/0",
        "tcp/443 to 198.51.100.208 not open to 0.0.0.0/0",
        "tcp/443 to 198.51.100.209 not open to 0.0.0.0/0"}


@pytest.mark.parametrize("expr", [
    [match("ip", "saddr", "10.76.0.11", op="!="), match("tcp", "dport", 22), ACCEPT],
    [match("ip", "saddr", "10.76.0.11"), {"jump": {"target": "more"}}],
    [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, ACCEPT],
    [match("th", "dport", 22), ACCEPT],
    [match("tcp", "dport", 22), {"drop": None}],
], ids=["negation", "jump", "interface", "transport-header", "early-drop"])
def test_read_ruleset_rule_it_cannot_scope_is_a_problem(expr):
    doc = add_rule(ruleset("backup-b"), *expr)
    assert [p for p in fm.read_ruleset(doc).problems if "rule 999: unreadable" in p]


def test_read_ruleset_accept_chain_with_rules_is_a_problem():
    doc = ruleset("ops")
    doc["nftables"].append({"chain": {"family": "ip", "table": "extra", "name": "in",
                                      "type": "filter", "hook": "input", "prio": -10,
                                      "policy": "accept"}})
    doc["nftables"].append({"rule": {"family": "ip", "table": "extra", "chain": "in",
                                     "handle": 1, "expr": [ACCEPT]}})
    assert fm.read_ruleset(doc).problems == [
        "input chain ip extra in has policy accept and rules: cannot be graded"]


def test_read_ruleset_without_a_drop_chain_is_a_problem():
    doc = ruleset("ops")
    for x in doc["nftables"]:
        if "chain" in x and x["chain"]["name"] == "input":
            x["chain"]["policy"] = "accept"
    assert "0 input chains with policy drop (want exactly one)" in \
        fm.read_ruleset(doc).problems


def test_compare_range_and_set_of_the_same_addresses_are_equal():
    as_set = fm.Opening("tcp", (22,), tuple(ip_network(a) for a in ("10.0.0.4", "10.0.0.5")))
    [rng] = fm.read_ruleset(add_rule(
        {"nftables": [{"chain": {"family": "inet", "table": "filter", "name": "input",
                                 "hook": "input", "policy": "drop"}}]},
        match("ip", "saddr", {"range": ["10.0.0.4", "10.0.0.5"]}),
        match("tcp", "dport", {"set": [22]}), ACCEPT)).openings
    assert fm.compare([rng], [as_set]) == []


def test_expected_openings_not_public_proxy_allows_exposure_list_and_bastion_probes():
    inv = {**INV, "exposure_allow": ["203.0.113.0/24"]}
    [ssh, sites] = fm.expected_openings(inv, entry("proxy"))
    assert ssh.sources == (ip_network("10.76.0.11/32"),) and ssh.ports == (22, 9100)
    assert sites.sources == (ip_network("203.0.113.0/24"), ip_network("198.51.100.203/32"))
    assert sites.destinations == ("198.51.100.208", "198.51.100.209")


def test_expected_openings_bastion_ssh_from_admin_networks_only():
    assert [(o.ports, o.sources) for o in fm.expected_openings(INV, entry("ops"))][0] == \
        ((22,), (ip_network("198.51.100.193/32"),))


def test_expected_openings_bastion_syslog_tls_from_every_other_host():
    """Central logging (issue 17): 6514 on ops from the other hosts' private addresses."""
    want = [o for o in fm.expected_openings(INV, entry("ops")) if o.ports == (6514,)]
    assert [sorted(map(str, o.sources)) for o in want] == [sorted(
        f"{h['private_ip']}/32" for h in INV["hosts"] if h["name"] != "ops")]


def test_openings_check_bastion_without_syslog_rule_fails():
    doc = ruleset("ops")
    doc["nftables"] = [x for x in doc["nftables"]
                       if "rule" not in x or "6514" not in json.dumps(x["rule"])]
    assert [p for p in problems_of("ops", doc) if "6514" in p and "not open to" in p]


def test_allows_web_to_storage_ssh_but_not_web_to_web():
    storage, web = fm.expected_openings(INV, entry("backup-a")), \
        fm.expected_openings(INV, entry("web-participation"))
    assert fm.allows(storage, "10.76.0.100", 22, "10.76.0.20")
    assert not fm.allows(web, "10.76.0.100", 22, "10.76.0.101")
    assert not fm.allows(storage, "10.76.0.100", 9100, "10.76.0.20")


def test_parse_probe_timeout_is_filtered_anything_else_reachable():
    assert tf.parse_probe("10.0.0.1:22 0\n10.0.0.1:80 124\n10.0.0.1:443 1\n") == {
        ("10.0.0.1", 22): "reachable", ("10.0.0.1", 80): "filtered",
        ("10.0.0.1", 443): "reachable"}


def test_probe_script_names_every_target():
    script = tf.probe_script([("10.0.0.1", 22), ("10.0.0.2", 443)], timeout=3)
    assert "for t in 10.0.0.1:22 10.0.0.2:443;" in script and "timeout 3 bash" in script


def lab_probes(broken: tuple[str, str, int] | None = None) -> dict:
    """What the probes of a healthy lab see, from the matrix; `broken` = (prober, target IP,
    port) answered although the firewall should drop it."""
    out: dict[str, dict] = {}
    for p in tf.probers(INV):
        out[p["name"]] = {}
        for h in INV["hosts"]:
            want = fm.expected_openings(INV, h)
            for port in tf.PROBE_PORTS:
                ok = fm.allows(want, p["private_ip"], port, h["private_ip"])
                out[p["name"]][(h["private_ip"], port)] = "reachable" if ok else "filtered"
    if broken:
        out[broken[0]][(broken[1], broken[2])] = "reachable"
    return out


def test_probe_check_healthy_lab_passes():
    for h in INV["hosts"]:
        tf.test_firewall_probes_from_other_hosts_match_the_matrix(h, INV, lab_probes())


def test_probe_check_port_answered_where_it_should_be_dropped_fails():
    # The proxy reaching MariaDB's port on a web host: the kernel let it through.
    with pytest.raises(AssertionError, match=r"proxy -> 10.76.0.100:3306: reachable, want "
                                             r"filtered"):
        tf.test_firewall_probes_from_other_hosts_match_the_matrix(
            entry("web-villeparisis"), INV, lab_probes(("proxy", "10.76.0.100", 3306)))
