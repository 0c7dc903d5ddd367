"""The hosts an environment has (DESIGN.md's topology) and their private address plan.

Both infra/ (OVH) and lab/ (local containers) create exactly these hosts.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from model.types import Role, Stack

# Fixed offsets in the private network: infrastructure hosts first (.1-.99 also hold the
# gateways and DHCP pools, infra/addressing.py), web hosts at .100 and above. A web host's
# offset is its site's explicit `host_number` in the stack file, never its position in the site
# list: removing or reordering a site must not renumber (hence replace) any other host.
_OFFSETS = {"proxy": 10, "ops": 11, "backup-a": 20, "backup-b": 21}
WEB_FIRST = 100


@dataclass(frozen=True)
class HostPlan:
    name: str
    role: Role
    region: str
    sites: tuple[str, ...]  # sites served (web: its own; proxy: all)
    public: bool  # has a public interface (proxy, bastion)
    tier: str | None = None  # storage tier "a" or "b"


def plan_hosts(stack: Stack) -> tuple[HostPlan, ...]:
    names = tuple(s.name for s in stack.sites)
    region, far = stack.ovh.region, stack.ovh.backup_b_region
    return (
        HostPlan("proxy", "proxy", region, names, public=True),
        HostPlan("ops", "ops", region, (), public=True),
        *(HostPlan(s.host, "web", region, (s.name,), public=False) for s in stack.sites),
        HostPlan("backup-a", "storage", region, names, public=False, tier="a"),
        HostPlan("backup-b", "storage", far, names, public=False, tier="b"),
    )


def _offsets(stack: Stack) -> dict[str, int]:
    web = {s.host: s.host_number for s in stack.sites}
    return {**_OFFSETS, **web}


def web_host_range(cidr: IPv4Network) -> range:
    """The host numbers a web host may take in `cidr`: .100 up to the last usable address."""
    return range(WEB_FIRST, cidr.num_addresses - 1)


def private_addresses(stack: Stack, cidr: IPv4Network | None = None) -> dict[str, IPv4Address]:
    """Every host's private address, computed in one pass (O(hosts), 200 sites included)."""
    net = cidr or stack.network.private_cidr
    offsets = _offsets(stack)
    out = {}
    for h in plan_hosts(stack):
        offset = offsets[h.name]
        if not 0 < offset < net.num_addresses - 1:
            raise ValueError(f"{net} has no room for host {h.name} (offset {offset})")
        out[h.name] = net.network_address + offset
    return out
