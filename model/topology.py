"""The hosts an environment has (DESIGN.md's topology) and their private address plan.

Both infra/ (OVH) and lab/ (local containers) create exactly these hosts.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from model.types import Role, Stack

# Fixed offsets in the private network: infrastructure hosts first, web hosts from .100 on,
# so adding a site never renumbers an existing host.
_OFFSETS = {"proxy": 10, "ops": 11, "backup-a": 20, "backup-b": 21}
_WEB_FIRST = 100


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


def private_address(cidr: IPv4Network, host: HostPlan, stack: Stack) -> IPv4Address:
    if host.name in _OFFSETS:
        offset = _OFFSETS[host.name]
    else:
        offset = _WEB_FIRST + [s.host for s in stack.sites].index(host.name)
    if offset >= cidr.num_addresses - 1:
        raise ValueError(f"{cidr} has no room for host {host.name} (offset {offset})")
    return cidr.network_address + offset


def private_addresses(stack: Stack, cidr: IPv4Network | None = None) -> dict[str, IPv4Address]:
    net = cidr or stack.network.private_cidr
    return {h.name: private_address(net, h, stack) for h in plan_hosts(stack)}
