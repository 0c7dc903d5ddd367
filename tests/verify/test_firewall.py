"""nftables: default deny on every host, and exactly the documented openings (R-GDPR-6,
R-HOST-1), read from the live ruleset and probed from other hosts.

Independent of the deployer (issue 17): the expected matrix is written from the documented
policy and the inventory's addresses (tests/verify/firewall_matrix.py), the live side is the
kernel's `nft -j list ruleset` parsed here, and the probes open TCP connections from other hosts:
nothing of roles/base/firewall.py is imported or re-run. A policy-drop chain with an accept-all
rule, a port opened to a wider source, or a rule this suite cannot read all fail.
"""
from __future__ import annotations

import json
import shlex
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from . import firewall_matrix as fm

# Probed from other hosts on each target's private address: the documented openings and the
# ports that must stay shut from the private network (MariaDB, plain HTTP).
PROBE_PORTS = (22, 80, 443, 3306, 9100)
PROBE_TIMEOUT_S = 2  # a dropped SYN times out; an accepted one is answered (SYN-ACK or RST)
_PROBES: dict[str, dict[tuple[str, int], str]] = {}


def _ruleset(host: Any) -> dict[str, Any]:
    return json.loads(host.check_output("nft -j list ruleset"))


def test_nftables_input_chain_policy_drop(host):
    chains = [x["chain"] for x in _ruleset(host)["nftables"] if "chain" in x]
    inputs = [c for c in chains if c.get("hook") == "input"]
    assert inputs, "no input hook chain"
    assert all(c.get("policy") == "drop" for c in inputs)


def test_nftables_openings_are_exactly_the_matrix(host, host_entry, inventory):
    # Per role, which TCP ports are open to which sources: nothing more, nothing less.
    live = fm.read_ruleset(_ruleset(host))
    problems = live.problems + fm.compare(live.openings,
                                          fm.expected_openings(inventory, host_entry))
    assert not problems, "\n".join(problems)


def probe_script(targets: list[tuple[str, int]], timeout: int = PROBE_TIMEOUT_S) -> str:
    """A bash script printing `IP:PORT RC` for a TCP connect to each target, all at once:
    rc 0 connected, 124 timed out (dropped), anything else refused (answered)."""
    words = " ".join(f"{ip}:{port}" for ip, port in targets)
    return (f"for t in {words}; do (timeout {timeout} bash -c "
            "\"exec 3<>/dev/tcp/${t%:*}/${t#*:}\" 2>/dev/null; echo \"$t $?\") & done; wait")


def parse_probe(out: str) -> dict[tuple[str, int], str]:
    got = {}
    for line in out.splitlines():
        target, rc = line.split()
        ip, port = target.rsplit(":", 1)
        got[(ip, int(port))] = "filtered" if rc == "124" else "reachable"
    return got


def probers(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    """The bastion (allowed in everywhere), the first proxy and the first web host (allowed in
    a few places only)."""
    hosts = inventory["hosts"]
    picked = [next(h for h in hosts if h["name"] == inventory["bastion"])]
    for role in ("proxy", "web"):
        picked += [h for h in hosts if h["role"] == role][:1]
    return picked


@pytest.fixture(scope="session")
def probes(inventory, host_named) -> dict[str, dict[tuple[str, int], str]]:
    """{prober: {(target private IP, port): reachable | filtered}}, every other host probed."""
    if not _PROBES:
        def run(p: dict[str, Any]) -> dict[tuple[str, int], str]:
            targets = [(h["private_ip"], port) for h in inventory["hosts"]
                       if h["name"] != p["name"] for port in PROBE_PORTS]
            return parse_probe(host_named(p["name"]).check_output(
                f"bash -c {shlex.quote(probe_script(targets))}"))

        # One connection per prober: the three wait out their timeouts at the same time.
        with ThreadPoolExecutor(max_workers=3) as pool:
            for p, got in zip(probers(inventory), pool.map(run, probers(inventory)),
                              strict=True):
                _PROBES[p["name"]] = got
    return _PROBES


def test_firewall_probes_from_other_hosts_match_the_matrix(host_entry, inventory, probes):
    # A real TCP connect from the private network: what the kernel does, not what the ruleset
    # says (a second table, a hook priority, a stale ruleset would show here).
    want = fm.expected_openings(inventory, host_entry)
    ip = host_entry["private_ip"]
    problems = []
    for p in probers(inventory):
        if p["name"] == host_entry["name"]:
            continue
        for port in PROBE_PORTS:
            expected = "reachable" if fm.allows(want, p["private_ip"], port, ip) else "filtered"
            got = probes[p["name"]].get((ip, port))
            if got != expected:
                problems.append(f"{p['name']} -> {ip}:{port}: {got}, want {expected}")
    assert not problems, "\n".join(problems)


def test_nftables_service_enabled_at_boot(host):
    assert host.service("nftables").is_enabled


def test_ip_forwarding_disabled(host):
    assert host.check_output("cat /proc/sys/net/ipv4/ip_forward") == "0"
