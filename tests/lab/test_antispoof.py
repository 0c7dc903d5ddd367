"""Forged sources on the lab's networks (issue 19 item 6, R-GDPR-2, R-GDPR-4): a web host with
root sends a few raw frames (python3's AF_PACKET, stdlib only, bounded count and wait) claiming
the proxy's or the bastion's private address, the proxy's MAC, or an ARP reply for the proxy's
address, to the other web host. The bridge's anti-spoofing table (lab.antispoof) drops them:
no answer comes back, and a counter at the very first hook of the target (netdev ingress on its
port, before its own firewall) never sees them. The same frames with the sender's own address
do reach the target (so the counter would have seen the forged ones), and ordinary traffic of
the same host (SSH through the bastion, the apt proxy) still works. The public bridge too: a
client there cannot claim the bastion's public address towards the proxy.
"""
from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address

import pytest

from lab import antispoof
from lab.network import mac_for
from lab.testing import LabSession, Probe, planned_hosts

pytestmark = pytest.mark.lab

PLAN = planned_hosts()
WEBS = [n for n, role, _ in PLAN if role == "web"]
COUNT = 5  # frames per attempt: a few, never a flood
WAIT = 2.0  # seconds the sender listens for an answer
# Our SYNs only: the sender's kernel answers a SYN-ACK to its raw SYN with a RST (same ports).
SYN_ONLY = "tcp flags & (syn | ack) == syn"

# Sent inside the host (Debian's python3, stdlib only): TCP SYNs or an ARP reply in raw
# Ethernet frames on one interface, then listen WAIT seconds for TCP answers to our port.
FRAMES = r"""
import json, socket, struct, sys, time
a = json.loads(sys.argv[1])
mac = lambda m: bytes.fromhex(m.replace(":", ""))
def csum(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
src, dst = socket.inet_aton(a["src"]), socket.inet_aton(a["dst"])
eth = mac(a["dst_mac"]) + mac(a["src_mac"])
rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
rx.bind((a["iface"], 0))
rx.settimeout(0.2)
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind((a["iface"], 0))
for i in range(a["count"]):
    if a["kind"] == "arp":  # a reply: "src is at src_mac"
        tx.send(eth + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2)
                + mac(a["src_mac"]) + src + mac(a["dst_mac"]) + dst)
        continue
    tcp = struct.pack("!HHIIBBHHH", a["sport"], a["dport"], 0x1000 + i, 0, 0x50, 0x02,
                      64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0x4000 + i, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    tx.send(eth + b"\x08\x00" + ip + tcp)
answers, end = 0, time.monotonic() + a["wait"]
while a["kind"] == "tcp" and time.monotonic() < end:
    try:
        p = rx.recv(2048)[14:]
    except socket.timeout:
        continue
    if len(p) >= 40 and p[9] == 6 and p[12:16] == dst:
        h = (p[0] & 15) * 4
        if struct.unpack("!HH", p[h:h + 4]) == (a["dport"], a["sport"]):
            answers += 1
print(json.dumps({"sent": a["count"], "answers": answers}))
"""


Send = Callable[[list[str]], subprocess.CompletedProcess[str]]


def frames(send: Send, **args: object) -> dict[str, int]:
    """Run FRAMES with these arguments through `send(argv)`; its JSON result."""
    full = {"count": COUNT, "wait": WAIT, "kind": "tcp", "sport": 0, "dport": 0, **args}
    out = send(["python3", "-c", FRAMES, json.dumps(full)])
    return json.loads(out.stdout)


@contextmanager
def counters(ns: str, device: str, rules: dict[str, str]) -> Iterator[Callable[[], dict[str, int]]]:
    """Named nftables counters at the netdev ingress of `device` in namespace `ns` (the first
    place a frame reaches on the target, before its own firewall); yields a reader."""
    table = "antispoof-witness"
    body = "\n".join(f"  counter {name} {{}}" for name in rules)
    chain = "\n".join(f'    {match} counter name "{name}"' for name, match in rules.items())
    script = (f"table netdev {table}\ndelete table netdev {table}\n"
              f"table netdev {table} {{\n{body}\n  chain in {{\n"
              f'    type filter hook ingress device "{device}" priority -500; policy accept;\n'
              f"{chain}\n  }}\n}}\n")
    nft = ["ip", "netns", "exec", ns, "nft"]
    subprocess.run([*nft, "-f", "-"], input=script, text=True, check=True, timeout=30,
                   capture_output=True)

    def read() -> dict[str, int]:
        out = subprocess.run([*nft, "-j", "list", "counters", "table", "netdev", table],
                             text=True, check=True, timeout=30, capture_output=True).stdout
        return {c["counter"]["name"]: c["counter"]["packets"]
                for c in json.loads(out)["nftables"] if "counter" in c}

    try:
        yield read
    finally:
        subprocess.run([*nft, "delete", "table", "netdev", table], timeout=30,
                       capture_output=True)


def marker() -> int:
    """A source port no real connection of the test uses at that moment."""
    return 40000 + 2 * secrets.randbelow(10000)


def ip_of(lab: LabSession, host: str) -> str:
    return lab.host(host)["private_ip"]


def attacker_dropped(lab: LabSession, attacker: str, reason: str) -> int:
    cfg = lab.lab.cfg
    port = cfg.veth(lab.lab.port_index(attacker), "prv")
    return antispoof.dropped(cfg.netns(attacker))[port][reason]


# The ports the claimed address is let in on: the web listener (443, proxy only) and SSH
# (22, through the bastion on ops): a forged SYN that got through would be answered.
@pytest.mark.parametrize(("claimed", "dport"), [("proxy", 443), ("ops", 22)])
def test_forged_private_source_from_web_host_gets_no_answer_and_never_reaches_target(
        lab: LabSession, claimed: str, dport: int) -> None:
    attacker, target = WEBS[0], WEBS[1]
    me, victim, forged = ip_of(lab, attacker), ip_of(lab, target), ip_of(lab, claimed)
    bad = marker()
    good = bad + 1
    send = lambda argv: lab.root_exec(attacker, argv, timeout=60)  # noqa: E731
    common = {"iface": "priv0", "src_mac": mac_for(IPv4Address(me)),
              "dst_mac": mac_for(IPv4Address(victim)), "dst": victim, "dport": dport}
    before = attacker_dropped(lab, attacker, antispoof.FORGED_IP)
    with counters(lab.lab.cfg.netns(target), "priv0", {
            "forged": f"tcp sport {bad}",
            "genuine": f"ip saddr {me} tcp sport {good} {SYN_ONLY}"}) as seen:
        spoofed = frames(send, **common, src=forged, sport=bad)
        genuine = frames(send, **common, src=me, sport=good)
        counted = seen()
    assert spoofed == {"sent": COUNT, "answers": 0}
    assert counted["forged"] == 0, f"the target saw {counted['forged']} packets from {claimed}"
    assert attacker_dropped(lab, attacker, antispoof.FORGED_IP) - before >= COUNT
    # The witness works: the same frames from the sender's own address reach the target.
    assert genuine["sent"] == COUNT and counted["genuine"] == COUNT


def test_forged_source_mac_from_web_host_never_reaches_target(lab: LabSession) -> None:
    attacker, target = WEBS[0], WEBS[1]
    me, victim = ip_of(lab, attacker), ip_of(lab, target)
    proxy_mac = mac_for(IPv4Address(ip_of(lab, "proxy")))
    bad = marker()
    send = lambda argv: lab.root_exec(attacker, argv, timeout=60)  # noqa: E731
    before = attacker_dropped(lab, attacker, antispoof.FORGED_MAC)
    with counters(lab.lab.cfg.netns(target), "priv0", {"forged": f"tcp sport {bad}"}) as seen:
        result = frames(send, iface="priv0", src_mac=proxy_mac,
                        dst_mac=mac_for(IPv4Address(victim)), src=me, dst=victim,
                        sport=bad, dport=22)
        counted = seen()
    assert result == {"sent": COUNT, "answers": 0}
    assert counted["forged"] == 0
    assert attacker_dropped(lab, attacker, antispoof.FORGED_MAC) - before >= COUNT


def test_forged_arp_reply_for_proxy_address_never_reaches_target(lab: LabSession) -> None:
    attacker, target = WEBS[0], WEBS[1]
    me, victim, proxy = ip_of(lab, attacker), ip_of(lab, target), ip_of(lab, "proxy")
    my_mac = mac_for(IPv4Address(me))
    send = lambda argv: lab.root_exec(attacker, argv, timeout=60)  # noqa: E731
    before = attacker_dropped(lab, attacker, antispoof.FORGED_ARP)
    with counters(lab.lab.cfg.netns(target), "priv0", {
            "forged": f"arp saddr ether {my_mac} arp saddr ip {proxy}",
            "genuine": f"arp saddr ether {my_mac} arp saddr ip {me}"}) as seen:
        frames(send, kind="arp", iface="priv0", src_mac=my_mac,
               dst_mac=mac_for(IPv4Address(victim)), src=proxy, dst=victim)
        frames(send, kind="arp", iface="priv0", src_mac=my_mac,
               dst_mac=mac_for(IPv4Address(victim)), src=me, dst=victim)
        counted = seen()
    assert counted["forged"] == 0
    # The witness works (the sender's kernel may add an ARP of its own meanwhile).
    assert counted["genuine"] >= COUNT
    assert attacker_dropped(lab, attacker, antispoof.FORGED_ARP) - before >= COUNT
    neigh = lab.root_exec(target, ["ip", "-j", "neigh", "show", proxy]).stdout
    assert my_mac not in neigh, f"{target} believes {proxy} is at the attacker's MAC"


def test_forged_public_source_from_internet_client_never_reaches_proxy(
        lab: LabSession) -> None:
    proxy_ns = lab.lab.cfg.netns("proxy")
    ops_public, proxy_public = lab.host("ops")["public_ip"], lab.host("proxy")["public_ip"]
    bad = marker()
    good = bad + 1
    with Probe(lab.lab, "pub", 40) as client, counters(proxy_ns, "pub0", {
            "forged": f"tcp sport {bad}",
            "genuine": f"ip saddr {client.address.ip} tcp sport {good} {SYN_ONLY}"}) as seen:
        send = lambda argv: client.run(argv, timeout=60)  # noqa: E731
        common = {"iface": "eth0", "src_mac": mac_for(client.address.ip),
                  "dst_mac": mac_for(IPv4Address(proxy_public)), "dst": proxy_public,
                  "dport": 443}
        spoofed = frames(send, **common, src=ops_public, sport=bad)
        frames(send, **common, src=str(client.address.ip), sport=good)
        counted = seen()
    assert spoofed["answers"] == 0
    assert counted["forged"] == 0
    assert counted["genuine"] == COUNT


def test_genuine_traffic_of_the_same_web_host_still_works(lab: LabSession) -> None:
    attacker = WEBS[0]
    assert lab.run(attacker, "hostname").stdout.strip() == attacker  # SSH through the bastion
    apt = (str(lab.lab.cfg.private_net.network_address + 1), lab.lab.cfg.apt_proxy_port)
    probe = ("import socket,sys; s=socket.socket(); s.settimeout(5);"
             f" sys.exit(s.connect_ex({apt!r}))")
    assert lab.root_exec(attacker, ["python3", "-c", probe], check=False).returncode == 0
    # ... while its anti-spoofing table is loaded.
    assert antispoof.exists(lab.lab.cfg.netns(attacker))
