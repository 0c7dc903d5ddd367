"""Bridges, network namespaces and veth ports: the lab's "public" network and its "vRack".

The machine itself sits on both bridges (first address of each range): on the public one it
plays the internet client and the admin network; on the private one it serves the apt proxy.
No forwarding, no NAT, no default route in the hosts: nothing in the lab can reach further.
Each host's ports carry only frames from its own MAC and packets from its own addresses
(lab.antispoof, issue 19): as on OVH with port security, a host cannot forge another's source.
"""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from lab import antispoof
from localcmd import ok, run

NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True)
class Port:
    """One veth pair: `outer` on the bridge, `inner` (pub0/priv0) in the host's namespace."""
    bridge: str
    outer: str
    inner: str
    address: IPv4Interface  # the host's primary address on this network
    extra: tuple[IPv4Address, ...] = ()  # more addresses (the proxy's per-site public IPs)


def guards(ports: tuple[Port, ...]) -> list[antispoof.PortGuard]:
    """What each port may send: the inner end's MAC (mac_for of its primary address) and the
    port's addresses (primary and extra)."""
    return [antispoof.PortGuard(p.outer, mac_for(p.address.ip), (p.address.ip, *p.extra))
            for p in ports]


def mac_for(address: IPv4Address, salt: int = 0) -> str:
    """A fixed, locally administered MAC per address: a re-created host keeps its MAC, so the
    machine's neighbour cache never points at a dead one (stale ARP cost ~40 s otherwise)."""
    b = address.packed
    return f"02:{0x4c + salt:02x}:{b[0]:02x}:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}"


def _links() -> dict[str, dict]:
    out = run(["ip", "-j", "addr", "show"]).stdout
    return {link["ifname"]: link for link in json.loads(out or "[]")}


def _addresses(link: dict) -> set[str]:
    return {f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
            if a.get("family") == "inet"}


def set_sysctl(key: str, value: str, ns: str | None = None) -> None:
    """Set a net.* sysctl on the machine or in a namespace (/proc/sys/net is per namespace),
    without needing procps' sysctl binary."""
    if not key.startswith("net."):
        raise ValueError(f"the lab only sets net.* sysctls, not {key}")
    path = "/proc/sys/" + key.replace(".", "/")
    if ns is None:
        Path(path).write_text(value + "\n")
    else:
        run(["ip", "netns", "exec", ns, "sh", "-c", f'echo {value} > "$1"', "sh", path])


def check_no_collision(networks: tuple[IPv4Network, ...], own: set[str]) -> None:
    """Refuse to use ranges that an interface we did not make already uses (another lab, the
    uplink): two bridges with one subnet would make the machine's routing ambiguous."""
    for name, link in _links().items():
        if name in own:
            continue
        for cidr in _addresses(link):
            iface = IPv4Interface(cidr)
            for net in networks:
                if iface.network.overlaps(net):
                    raise RuntimeError(
                        f"lab range {net} collides with {cidr} on interface {name}: "
                        "choose other ranges (--public-cidr/--private-cidr) or another prefix")


# Names the machine itself must keep reaching while a lab is up: the Debian mirror (for the apt
# proxy and image builds) and PyPI (pip installs of other work on the machine).
MUST_REACH = ("pypi.org",)


def machine_needs(mirror_host: str) -> dict[str, str]:
    """Addresses the machine uses that a lab range must never contain, with what each is.

    A machine may reach the Debian archive or PyPI through an address inside a documentation
    range (an egress proxy behind the default route). A lab bridge on a range holding it turns
    that into an on-link route to the bridge and cuts the whole machine off the archive and
    PyPI, so such ranges are refused."""
    reached: dict[str, list[str]] = {}
    for name in dict.fromkeys((mirror_host, *MUST_REACH)):
        try:
            infos = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            continue  # offline: nothing to protect
        for info in infos:
            names = reached.setdefault(str(info[4][0]), [])
            if name not in names:
                names.append(name)
    needs = {address: f"the address this machine reaches {' and '.join(names)} at"
             for address, names in reached.items()}
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                needs[parts[1]] = "this machine's DNS server"
    except OSError:
        pass
    out = run(["ip", "-j", "-4", "route", "show", "default"]).stdout
    for route in json.loads(out or "[]"):
        if "gateway" in route:
            needs[route["gateway"]] = "this machine's default gateway"
    return needs


def check_machine_reach(networks: tuple[IPv4Network, ...], mirror_host: str) -> None:
    for address, what in machine_needs(mirror_host).items():
        try:
            ip = IPv4Address(address)
        except ValueError:
            continue  # IPv6: the lab has no IPv6
        for net in networks:
            if ip in net:
                raise RuntimeError(
                    f"lab range {net} contains {ip}, {what}: a lab bridge there would cut the "
                    "machine off it; choose another range (--public-cidr/--private-cidr)")


def ensure_bridge(name: str, address: IPv4Interface) -> bool:
    """Create the bridge with the machine's address on it; True if anything was changed."""
    changed = False
    links = _links()
    if name not in links:
        run(["ip", "link", "add", "name", name, "address", mac_for(address.ip, 1),
             "type", "bridge"])
        changed = True
        links = _links()
    # No IPv6 on lab links: no SLAAC, no DAD delays, no second way in.
    set_sysctl(f"net.ipv6.conf.{name}.disable_ipv6", "1")
    if str(address) not in _addresses(links[name]):
        run(["ip", "addr", "replace", str(address), "dev", name])
        changed = True
    if "UP" not in links[name].get("flags", []):
        run(["ip", "link", "set", name, "up"])
        changed = True
    return changed


def delete_link(name: str) -> bool:
    if not Path(f"/sys/class/net/{name}").exists():
        return False
    run(["ip", "neigh", "flush", "dev", name], check=False)
    run(["ip", "link", "del", name], check=False)
    return True


def netns_exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


def _ns_links(ns: str) -> dict[str, dict]:
    out = run(["ip", "-n", ns, "-j", "addr", "show"]).stdout
    return {link["ifname"]: link for link in json.loads(out or "[]")}


def _want(port: Port) -> set[str]:
    return {str(port.address)} | {f"{a}/32" for a in port.extra}


def host_network_state(ns: str, ports: tuple[Port, ...]) -> str:
    """"ok": every port there, up, on its bridge, with exactly its addresses; "addresses":
    the same but some addresses differ (a site was added or removed: fixable in place);
    "broken": anything else (the namespace must be made again)."""
    if not netns_exists(ns):
        return "broken"
    # Its anti-spoofing table gone (a flushed ruleset): sync_addresses loads it again.
    state = "ok" if antispoof.exists(ns) else "addresses"
    links = _ns_links(ns)
    outer = _links()
    for port in ports:
        link = links.get(port.inner)
        if link is None or "UP" not in link.get("flags", []):
            return "broken"
        o = outer.get(port.outer)
        if o is None or o.get("master") != port.bridge or "UP" not in o.get("flags", []):
            return "broken"
        have = _addresses(link)
        if str(port.address) not in have:
            return "broken"
        if have != _want(port):
            state = "addresses"
    return state


def sync_addresses(ns: str, ports: tuple[Port, ...]) -> None:
    """Add and remove the extra addresses (site IPs) of a running host, without a restart."""
    links = _ns_links(ns)
    for port in ports:
        have, want = _addresses(links[port.inner]), _want(port)
        for cidr in sorted(want - have):
            run(["ip", "-n", ns, "addr", "add", cidr, "dev", port.inner])
        for cidr in sorted(have - want):
            run(["ip", "-n", ns, "addr", "del", cidr, "dev", port.inner])
    antispoof.apply(ns, guards(ports))  # the ports may now send from the new addresses only


def create_host_network(ns: str, ports: tuple[Port, ...]) -> None:
    """(Re)create a host's namespace and ports from scratch."""
    delete_host_network(ns, ports)
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    sysctls = {
        "net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1",
        # Answer ARP only for addresses of the receiving interface: like separate NICs on
        # separate networks, the proxy's public IPs must not answer from the vRack side.
        "net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2",
    }
    for key, value in sysctls.items():
        set_sysctl(key, value, ns)
    for port in ports:
        run(["ip", "link", "add", "name", port.outer, "address", mac_for(port.address.ip, 2),
             "type", "veth", "peer", "name", port.inner, "address", mac_for(port.address.ip),
             "netns", ns])
        set_sysctl(f"net.ipv6.conf.{port.outer}.disable_ipv6", "1")
        run(["ip", "link", "set", port.outer, "master", port.bridge, "up"])
        run(["ip", "-n", ns, "addr", "add", str(port.address), "dev", port.inner])
        for extra in port.extra:
            run(["ip", "-n", ns, "addr", "add", f"{extra}/32", "dev", port.inner])
        run(["ip", "-n", ns, "link", "set", port.inner, "up"])
    antispoof.apply(ns, guards(ports))


def delete_host_network(ns: str, ports: tuple[Port, ...] = ()) -> None:
    """Delete the namespace (which destroys the veth pairs in it), any outer end left and
    the host's anti-spoofing table."""
    if netns_exists(ns):
        run(["ip", "netns", "del", ns], check=False)
        if netns_exists(ns):  # a half-made entry: the mount point without a namespace
            run(["umount", str(NETNS_DIR / ns)], check=False)
            (NETNS_DIR / ns).unlink(missing_ok=True)
    for port in ports:
        delete_link(port.outer)
    antispoof.remove(ns)


def lab_links(prefix: str) -> list[str]:
    """Interfaces on the machine that this lab's naming scheme produced."""
    names = []
    for path in Path("/sys/class/net").iterdir():
        n = path.name
        if n in (f"{prefix}-pub", f"{prefix}-prv") or (
                n.startswith(prefix) and n[len(prefix):len(prefix) + 2].isdigit()
                and n[len(prefix) + 2:] in ("pub", "prv")):
            names.append(n)
    return sorted(names)


def lab_netns(prefix: str) -> list[str]:
    if not NETNS_DIR.exists():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix + "-"))


def tcp_open(ns: str | None, address: str, port: int, timeout: float = 2.0) -> bool:
    """Probe a TCP port, from the machine (ns None) or from inside a namespace."""
    code = (f"import socket,sys; s=socket.socket(); s.settimeout({timeout});"
            f" sys.exit(s.connect_ex(({address!r},{port}))!=0)")
    argv = ["python3", "-c", code]
    if ns is not None:
        argv = ["ip", "netns", "exec", ns, *argv]
    return ok(argv, timeout=timeout + 5)
