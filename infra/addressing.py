"""Pure address decisions for the private network (vRack) and the public IPs.

Hosts keep the fixed offsets of `model.topology` (.10 proxy, .11 ops, .20/.21 storage; web
hosts at their site's `host_number`, .100 and up, whatever the order of the sites). The DHCP
pools and the per-region gateways live in the unused gap .1-.99, so adding a site never
collides with them, whatever the CIDR the model accepted.
"""
from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from model.topology import private_addresses
from model.types import Stack

# One vRack VLAN spans both regions (OVH "multi-region" private network: same vRack, VLAN and
# subnet in every region); each region's subnet gets its own gateway address and DHCP range
# so the two OVH gateways and the two DHCP servers never hand out the same address.
_GATEWAY_OFFSET = {"main": 1, "far": 2}
_POOL_OFFSETS = {"main": (30, 64), "far": (65, 99)}


def regions(stack: Stack) -> tuple[str, ...]:
    """Regions holding hosts: the main one, then the long-term backup one (R-BKP-3)."""
    main, far = stack.ovh.region, stack.ovh.backup_b_region
    return (main,) if main == far else (main, far)


def _slot(stack: Stack, region: str) -> str:
    return "main" if region == stack.ovh.region else "far"


def gateway_ip(stack: Stack, region: str) -> IPv4Address:
    return stack.network.private_cidr.network_address + _GATEWAY_OFFSET[_slot(stack, region)]


def dhcp_pool(stack: Stack, region: str) -> tuple[IPv4Address, IPv4Address]:
    start, end = _POOL_OFFSETS[_slot(stack, region)]
    base = stack.network.private_cidr.network_address
    return base + start, base + end


@lru_cache(maxsize=16)
def addresses(stack: Stack) -> dict[str, IPv4Address]:
    """model.topology's address plan, computed once per stack: it costs O(sites^2) per call
    (measured: asking it per host made a 200-site build cubic, 15 s of 20)."""
    return private_addresses(stack)


def private_ip(stack: Stack, host: str) -> IPv4Address:
    return addresses(stack)[host]


def host_prefix(stack: Stack, host: str) -> str:
    """One host's private address as a /32 source (security-group rules name hosts exactly)."""
    return f"{private_ip(stack, host)}/32"


def web_prefixes(stack: Stack) -> tuple[str, ...]:
    """Exactly the web hosts' private addresses, collapsed (.100 and .101 -> one /31).

    Exact (no neighbour address slips in), and short: 200 sites give a handful of prefixes
    instead of 200 rules, which keeps within OpenStack's security-group rule quota.
    """
    addrs = addresses(stack)
    nets = (IPv4Network(addrs[s.host]) for s in stack.sites)
    return tuple(str(n) for n in collapse_addresses(nets))


def block_of(stack: Stack, ip: IPv4Address) -> IPv4Network:
    """The Additional IP block (as OVH's /ip API names it) holding a site's IP (R-HOST-2)."""
    for block in stack.network.public_ip_blocks:
        if ip in block:
            return block
    raise ValueError(f"{ip} is in no network.public_ip_blocks of {stack.file}")
