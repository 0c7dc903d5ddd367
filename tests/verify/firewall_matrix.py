"""The firewall as data, for tests/verify/test_firewall.py: which TCP ports each host's live
nftables ruleset (`nft -j list ruleset`) opens to which sources, and which it should open by the
inventory. Pure: JSON and dicts in, data out; unit-tested with real `nft -j` output and broken
copies of it (tests/unit/verify/test_firewall_matrix.py).

Independent of the deployer on purpose (issue 17): nothing here imports roles/ or engine/. The
expected matrix is written from the documented policy (docs/deploy.md's firewall table, R-GDPR-6,
R-HOST-1) and the inventory's addresses; the live side is read from the kernel's own JSON, not
from the file the deploy rendered. A rule this reader does not understand is a failure, never
skipped: an accept it cannot scope might open anything.

A rule reduces to: protocol ("tcp", "udp", or "*" for any), destination ports ("*" for any),
source networks (any = 0.0.0.0/0 and ::/0) and destination addresses ("*" = any of the host's
addresses). Openings are compared per (protocol, port, destination) with the sources collapsed,
so `{10.0.0.5, 10.0.0.6}` and a `10.0.0.5-10.0.0.6` range are the same opening.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Network,
    IPv6Network,
    collapse_addresses,
    ip_address,
    ip_network,
    summarize_address_range,
)
from typing import Any

Network = IPv4Network | IPv6Network
ANY4, ANY6 = ip_network("0.0.0.0/0"), ip_network("::/0")
NODE_EXPORTER = 9100
# What "stateful" rules may accept without opening anything new.
STATEFUL = {"established", "related"}
ICMP_PROTOCOLS = {"icmp", "ipv6-icmp", "icmpv6"}
IGNORED_STATEMENTS = {"counter", "limit", "log", "comment"}


class Unreadable(ValueError):
    """A rule or chain this reader cannot scope."""


@dataclass
class Opening:
    proto: str                                    # tcp | udp | *
    ports: tuple[int | str, ...]                  # ("*",) for any
    sources: tuple[Network, ...]                  # (ANY4, ANY6) for any
    destinations: tuple[str, ...] = ("*",)        # ("*",) for any of the host's addresses


@dataclass
class Ruleset:
    openings: list[Opening] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# ---- the live side: `nft -j list ruleset` ------------------------------------------------------

def _values(right: Any) -> list[Any]:
    """A match's right-hand side as a list: a scalar, a list, or {"set": [...]}."""
    if isinstance(right, dict) and "set" in right:
        return list(right["set"])
    return list(right) if isinstance(right, list) else [right]


def _networks(right: Any) -> list[Network]:
    out: list[Network] = []
    for v in _values(right):
        if isinstance(v, str):
            out.append(ip_network(v, strict=False))
        elif isinstance(v, dict) and "prefix" in v:
            out.append(ip_network(f"{v['prefix']['addr']}/{v['prefix']['len']}", strict=False))
        elif isinstance(v, dict) and "range" in v:
            lo, hi = (ip_address(a) for a in v["range"])
            out.extend(summarize_address_range(lo, hi))
        else:
            raise Unreadable(f"address {v!r}")
    return out


def _ports(right: Any) -> list[int | str]:
    out: list[int | str] = []
    for v in _values(right):
        if isinstance(v, int):
            out.append(v)
        elif isinstance(v, dict) and "range" in v:
            lo, hi = v["range"]
            out.extend(range(int(lo), int(hi) + 1))
        else:
            raise Unreadable(f"port {v!r}")
    return out


def _rule_text(expr: list[dict[str, Any]]) -> str:
    return " ".join(next(iter(e)) if e else "?" for e in expr)


def read_rule(expr: list[dict[str, Any]]) -> Opening | str | None:
    """One input-chain rule: an Opening (it accepts new connections), "stateful"/"loopback"/
    "icmp" (accepts nothing new on TCP or UDP ports), or None (it accepts nothing). Raises
    Unreadable for anything else."""
    verdicts = [k for e in expr for k in e if k in ("accept", "drop", "reject", "jump", "goto",
                                                    "return", "queue", "continue")]
    if not verdicts:
        return None  # a counter or a log line only
    if verdicts != [next(iter(expr[-1]))] or len(verdicts) != 1:
        raise Unreadable(f"verdict not last or several: {_rule_text(expr)}")
    verdict = verdicts[0]
    proto, ports, sources, dests = "*", None, None, None
    kinds: set[str] = set()
    for e in expr[:-1]:
        (key, body), = e.items()
        if key in IGNORED_STATEMENTS:
            continue
        if key != "match":
            raise Unreadable(f"statement {key!r}")
        op, left, right = body.get("op"), body.get("left", {}), body.get("right")
        if op not in ("==", "in"):
            raise Unreadable(f"operator {op!r}")  # a negation opens everything else
        if "ct" in left and left["ct"].get("key") == "state":
            states = set(_values(right))
            kinds.add("stateful" if states <= STATEFUL else
                      "invalid" if states == {"invalid"} else "ct-other")
        elif "meta" in left and left["meta"].get("key") in ("iif", "iifname"):
            kinds.add("loopback" if _values(right) == ["lo"] else "iface")
        elif "meta" in left and left["meta"].get("key") == "l4proto":
            protos = set(_values(right))
            if protos <= ICMP_PROTOCOLS:
                kinds.add("icmp")
            elif len(protos) == 1 and protos <= {"tcp", "udp"}:
                proto = protos.pop()
            else:
                raise Unreadable(f"l4proto {sorted(protos)}")
        elif "payload" in left:
            p, f = left["payload"].get("protocol"), left["payload"].get("field")
            if (p, f) in (("ip", "protocol"), ("ip6", "nexthdr")):
                protos = set(_values(right))
                if protos <= ICMP_PROTOCOLS:
                    kinds.add("icmp")
                elif len(protos) == 1 and protos <= {"tcp", "udp"}:
                    proto = protos.pop()
                else:
                    raise Unreadable(f"{p} {f} {sorted(protos)}")
            elif p in ("icmp", "icmpv6") and f in ("type", "code"):
                kinds.add("icmp")
            elif p in ("ip", "ip6") and f in ("saddr", "daddr"):
                nets = _networks(right)
                if f == "saddr":
                    sources = nets
                else:
                    dests = [str(n.network_address) if n.num_addresses == 1 else str(n)
                             for n in nets]
            elif p in ("tcp", "udp") and f == "dport":
                if proto not in ("*", p):
                    raise Unreadable(f"{p} dport in a {proto} rule")
                proto, ports = p, _ports(right)
            else:
                raise Unreadable(f"payload {p} {f}")
        else:
            raise Unreadable(f"match on {sorted(left)}")
    if verdict in ("drop", "reject"):
        if kinds == {"invalid"} and proto == "*" and ports is None:
            return None  # `ct state invalid drop`
        raise Unreadable(f"a {verdict} rule before the policy: {_rule_text(expr)}")
    if verdict != "accept":
        raise Unreadable(f"verdict {verdict!r} (other chains are not followed)")
    if kinds == {"stateful"} and (proto, ports, sources, dests) == ("*", None, None, None):
        return "stateful"
    if kinds == {"loopback"} and (proto, ports, sources, dests) == ("*", None, None, None):
        return "loopback"
    if kinds and kinds <= {"icmp"} and ports is None:
        return "icmp"
    if kinds:
        raise Unreadable(f"accept scoped by {sorted(kinds)}: {_rule_text(expr)}")
    family_any = (ANY4, ANY6)
    return Opening(proto, tuple(ports) if ports is not None else ("*",),
                   tuple(sources) if sources is not None else family_any,
                   tuple(dests) if dests is not None else ("*",))


def read_ruleset(doc: dict[str, Any]) -> Ruleset:
    """The openings of the one input base chain with policy drop (R-GDPR-6: default deny),
    and every reason the ruleset cannot be graded."""
    out = Ruleset()
    items = doc.get("nftables", [])
    chains = [x["chain"] for x in items if "chain" in x]
    inputs = [c for c in chains if c.get("hook") == "input"]
    drops = [c for c in inputs if c.get("policy") == "drop"]
    rules = [x["rule"] for x in items if "rule" in x]
    if len(drops) != 1:
        out.problems.append(f"{len(drops)} input chains with policy drop (want exactly one)")
    for c in inputs:
        if c.get("policy") != "drop" and any(
                (r["family"], r["table"], r["chain"]) == (c["family"], c["table"], c["name"])
                for r in rules):
            out.problems.append(f"input chain {c['family']} {c['table']} {c['name']} has policy "
                                f"{c.get('policy')} and rules: cannot be graded")
    for c in drops[:1]:
        for r in rules:
            if (r["family"], r["table"], r["chain"]) != (c["family"], c["table"], c["name"]):
                continue
            try:
                got = read_rule(r["expr"])
            except (Unreadable, ValueError, KeyError, TypeError) as exc:
                out.problems.append(f"rule {r.get('handle')}: unreadable ({exc})")
                continue
            if isinstance(got, Opening):
                out.openings.append(got)
    return out


# ---- the expected side: the inventory and the documented policy ------------------------------

def _net(text: str) -> Network:
    return ip_network(text, strict=False)


def expected_openings(inventory: dict[str, Any], host: dict[str, Any]) -> list[Opening]:
    """docs/deploy.md's firewall table, from the inventory's addresses (R-GDPR-6):
      every host but the bastion   22 and 9100 from the bastion's private address
      the bastion (ops)            22 from the admin networks only; 6514 (central logging,
                                   issue 17) from every other host's private address
      proxy                        80, 443 on the site IPs: from anywhere, or from exposure_allow
                                   (not public, e.g. preprod) plus the bastion's public address
                                   for the monitoring's site probes
      web                          443 from the proxy's private address only (R-HOST-1)
      storage                      22 from the web hosts' private addresses (backups)"""
    hosts = {h["name"]: h for h in inventory["hosts"]}
    bastion = hosts[inventory["bastion"]]
    by_role = defaultdict(list)
    for h in inventory["hosts"]:
        by_role[h["role"]].append(h)
    want: list[Opening] = []
    if host["name"] == bastion["name"]:
        want.append(Opening("tcp", (22,), tuple(_net(n) for n in inventory["admin_networks"])))
        others = tuple(_net(h["private_ip"]) for h in inventory["hosts"]
                       if h["name"] != bastion["name"])
        if others:
            want.append(Opening("tcp", (6514,), others))
    else:
        want.append(Opening("tcp", (22, NODE_EXPORTER), (_net(bastion["private_ip"]),)))
    if host["role"] == "storage" and by_role["web"]:
        want.append(Opening("tcp", (22,), tuple(_net(h["private_ip"]) for h in by_role["web"])))
    if host["role"] == "web":
        want.append(Opening("tcp", (443,), tuple(_net(h["private_ip"])
                                                 for h in by_role["proxy"])))
    if host["role"] == "proxy" and host.get("site_ips"):
        allow = inventory.get("exposure_allow") or []
        sources = tuple(_net(n) for n in allow) or (ANY4, ANY6)
        if allow and bastion.get("public_ip"):
            sources += (_net(bastion["public_ip"]),)
        want.append(Opening("tcp", (80, 443), sources, tuple(host["site_ips"])))
    return want


# ---- comparing -------------------------------------------------------------------------------

Key = tuple[str, "int | str", str]


def _matrix(openings: list[Opening]) -> dict[Key, list[Network]]:
    """{(proto, port, destination): collapsed sources}, per address family."""
    acc: dict[Key, list[Network]] = defaultdict(list)
    for o in openings:
        for port in o.ports:
            for dest in o.destinations:
                acc[(o.proto, port, dest)].extend(o.sources)
    out = {}
    for key, nets in acc.items():
        v4 = [n for n in nets if n.version == 4]
        v6 = [n for n in nets if n.version == 6]
        out[key] = [*collapse_addresses(v4), *collapse_addresses(v6)]
    return out


def _family_of(dest: str) -> int | None:
    return None if dest == "*" else ip_network(dest, strict=False).version


def compare(actual: list[Opening], expected: list[Opening]) -> list[str]:
    """Every difference between what is open and what should be: extra openings (a port or a
    source the matrix does not grant) and missing ones, one line each."""
    got, want = _matrix(actual), _matrix(expected)
    problems = []
    for key in sorted(set(got) | set(want), key=str):
        fam = _family_of(key[2])
        g = [n for n in got.get(key, []) if fam is None or n.version == fam]
        w = [n for n in want.get(key, []) if fam is None or n.version == fam]
        extra = [n for n in g if not any(n.subnet_of(x) for x in w if x.version == n.version)]
        missing = [n for n in w if not any(n.subnet_of(x) for x in g if x.version == n.version)]
        proto, port, dest = key
        where = f"{proto}/{port} to {dest}"
        if extra:
            problems.append(f"{where} open to {', '.join(map(str, extra))} beyond the matrix")
        if missing:
            problems.append(f"{where} not open to {', '.join(map(str, missing))}")
    return problems


def allows(expected: list[Opening], source: str, port: int, dest: str) -> bool:
    """Whether the matrix lets `source` reach `dest`:`port` over TCP (for the live probes)."""
    src = ip_address(source)
    for o in expected:
        if o.proto in ("tcp", "*") and (port in o.ports or "*" in o.ports) and \
                ("*" in o.destinations or dest in o.destinations) and \
                any(src in n for n in o.sources):
            return True
    return False
