"""Anti-spoofing on the lab's bridges (issue 19, R-GDPR-2, R-GDPR-4): a host's port carries
only what that host may send, as OpenStack port security does for an OVH instance's port.

Each host gets one nftables table in the `bridge` family, `antispoof-<its namespace>`, whose
`prerouting` chain looks at every frame entering the bridge from one of the host's ports (the
outer end of its veth pair) before the bridge forwards or delivers it:

- the source MAC must be the port's own (lab.network.mac_for of its address);
- IPv4 packets must come from one of the port's addresses (the primary address, plus the
  proxy's site IPs on its public port);
- ARP must claim the port's own MAC and one of its addresses (an ARP probe, a request from
  0.0.0.0, is allowed: RFC 5227 duplicate detection);
- nothing else: the lab has no IPv6 and no DHCP (addresses are static), so IPv6, VLAN tags and
  any other ethertype are dropped.

Every drop is counted (`nft list table bridge antispoof-...`), by reason, so a test or an admin
sees what was refused. Tables are per host and named after the host's namespace (which carries
the lab's prefix), so several labs coexist; the rules are validated (`nft -c`) before loading and
loaded in one transaction that replaces the host's table atomically.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from localcmd import CommandError, run

FAMILY = "bridge"
TABLE_PREFIX = "antispoof-"
# A name nft accepts unquoted and that cannot smuggle anything into the ruleset.
_NAME = re.compile(r"[a-z][a-z0-9-]{0,80}")
_MAC = re.compile(r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}")
# Reasons a frame is dropped, as the rules' comments (the counters are read back by them).
FORGED_MAC = "forged source MAC"
FORGED_IP = "forged source address"
FORGED_ARP = "forged ARP"
NOT_ALLOWED = "neither IPv4 nor ARP"
REASONS = (FORGED_MAC, FORGED_IP, FORGED_ARP, NOT_ALLOWED)


@dataclass(frozen=True)
class PortGuard:
    """What may enter the bridge through one port: `outer` is the veth end on the bridge."""
    outer: str
    mac: str
    addresses: tuple[IPv4Address, ...]

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.outer):
            raise ValueError(f"port name {self.outer!r}: lowercase letters, digits and '-'")
        if not _MAC.fullmatch(self.mac):
            raise ValueError(f"port {self.outer}: mac {self.mac!r} is not a lowercase MAC")
        if not self.addresses:
            raise ValueError(f"port {self.outer}: no address to allow")
        for a in self.addresses:
            if not isinstance(a, IPv4Address):
                raise ValueError(f"port {self.outer}: address {a!r} is not an IPv4Address")


def table_name(ns: str) -> str:
    name = TABLE_PREFIX + ns
    if not _NAME.fullmatch(name):
        raise ValueError(f"namespace {ns!r}: cannot name an nftables table after it")
    return name


def _set(addresses: Iterable[IPv4Address]) -> str:
    return "{ " + ", ".join(str(a) for a in sorted(set(addresses))) + " }"


def ruleset(table: str, guards: Sequence[PortGuard]) -> str:
    """The nft script that replaces `table` with the guards' rules (plain text, no I/O).

    The first two lines make the `delete` succeed whether or not the table exists, so the
    whole script is one atomic replacement."""
    if not _NAME.fullmatch(table):
        raise ValueError(f"table name {table!r}: lowercase letters, digits and '-'")
    if not guards:
        raise ValueError(f"table {table}: no port to guard")
    outers = [g.outer for g in guards]
    if len(set(outers)) != len(outers):
        raise ValueError(f"table {table}: a port appears twice ({', '.join(outers)})")
    lines = [f"table {FAMILY} {table}", f"delete table {FAMILY} {table}",
             f"table {FAMILY} {table} {{",
             "\tchain prerouting {",
             "\t\ttype filter hook prerouting priority filter; policy accept;"]
    lines += [f'\t\tiifname "{g.outer}" jump port-{g.outer}' for g in guards]
    lines.append("\t}")
    for g in guards:
        allowed = _set(g.addresses)
        arp_ok = f"arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ether {g.mac}"
        lines += [
            f"\tchain port-{g.outer} {{",
            f'\t\tether saddr != {g.mac} counter drop comment "{FORGED_MAC}"',
            f"\t\tip saddr {allowed} accept",
            f"\t\t{arp_ok} arp saddr ip {allowed} accept",
            f"\t\t{arp_ok} arp operation request arp saddr ip 0.0.0.0 accept",
            f'\t\tether type ip counter drop comment "{FORGED_IP}"',
            f'\t\tether type arp counter drop comment "{FORGED_ARP}"',
            f'\t\tcounter drop comment "{NOT_ALLOWED}"',
            "\t}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def removal(table: str) -> str:
    """The nft script that removes `table` whether or not it exists."""
    if not _NAME.fullmatch(table):
        raise ValueError(f"table name {table!r}: lowercase letters, digits and '-'")
    return f"table {FAMILY} {table}\ndelete table {FAMILY} {table}\n"


def _nft(script: str, *, check_only: bool = False) -> None:
    argv = ["nft", *(["-c"] if check_only else []), "-f", "-"]
    try:
        run(argv, input=script, timeout=30)
    except CommandError as exc:
        what = "rejected" if exc.returncode is not None else "could not run"
        raise RuntimeError(f"nftables {what} the lab's anti-spoofing rules "
                           f"({'check' if check_only else 'load'}): {exc.stderr}") from None


def apply(ns: str, guards: Sequence[PortGuard]) -> str:
    """Validate (`nft -c`) then load the host's table; returns the table's name. A rejected
    ruleset is never loaded and the old table (if any) stays as it was."""
    table = table_name(ns)
    script = ruleset(table, guards)
    _nft(script, check_only=True)
    _nft(script)
    return table


def remove(ns: str) -> None:
    """Remove the host's table (nothing happens if there is none, or no nft at all: then no
    table can have been made)."""
    try:
        run(["nft", "-f", "-"], input=removal(table_name(ns)), timeout=30)
    except CommandError as exc:
        if exc.returncode is None and "not installed" in exc.stderr:
            return
        raise RuntimeError(f"could not remove the lab's anti-spoofing table of {ns}: "
                           f"{exc.stderr}") from None


def exists(ns: str) -> bool:
    """Whether the host's table is loaded."""
    try:
        return run(["nft", "list", "table", FAMILY, table_name(ns)], timeout=30,
                   check=False).returncode == 0
    except CommandError:  # no nft at all
        return False


def tables(prefix: str) -> list[str]:
    """The anti-spoofing tables of the lab with this prefix that exist on the machine."""
    try:
        out = run(["nft", "-j", "list", "tables", FAMILY], timeout=30).stdout
    except CommandError as exc:
        if exc.returncode is None and "not installed" in exc.stderr:
            return []
        raise
    return table_names(out, prefix)


def table_names(nft_json: str, prefix: str) -> list[str]:
    """From `nft -j list tables bridge`: the names this lab's prefix produced."""
    marker = f"{TABLE_PREFIX}{prefix}-"
    names = []
    for item in json.loads(nft_json or "{}").get("nftables", []):
        t = item.get("table")
        if t and t.get("family") == FAMILY and str(t.get("name", "")).startswith(marker):
            names.append(t["name"])
    return sorted(names)


def remove_lab(prefix: str) -> list[str]:
    """Remove every anti-spoofing table of this lab (also those a crashed run left behind)."""
    names = tables(prefix)
    for name in names:
        remove(name[len(TABLE_PREFIX):])
    return names


def dropped(ns: str) -> dict[str, dict[str, int]]:
    """Packets dropped so far, per port and reason: {outer: {reason: packets}}."""
    out = run(["nft", "-j", "list", "table", FAMILY, table_name(ns)], timeout=30).stdout
    return drop_counts(out)


def drop_counts(nft_json: str) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for item in json.loads(nft_json or "{}").get("nftables", []):
        rule = item.get("rule")
        if not rule or not str(rule.get("chain", "")).startswith("port-"):
            continue
        outer = rule["chain"][len("port-"):]
        counts = result.setdefault(outer, dict.fromkeys(REASONS, 0))
        comment = rule.get("comment")
        for expr in rule.get("expr", []):
            if "counter" in expr and comment in counts:
                counts[comment] += int(expr["counter"].get("packets", 0))
    return result
