"""One public IP per site, all routed to the reverse proxy (R-HOST-2, R-HOST-1).

The site IPs are OVH Additional IPs the account already holds (`network.public_ip_blocks`).
OVH attaches them per block: the API (/cloud/project/{id}/ip/failover/{id}/attach, Pulumi's
`cloudproject.FailoverIpAttach`, matched on the block's address) moves a whole block to one
instance. So there is one attachment per block that holds site IPs -- a /32 per site when each
was ordered alone, one for all when they share a /29 -- and each site keeps its own address.
"""
from __future__ import annotations

from ipaddress import IPv4Network

import pulumi
import pulumi_openstack as openstack
import pulumi_ovh as ovh

from infra.addressing import block_of
from model.types import Stack


def site_blocks(stack: Stack) -> dict[IPv4Network, tuple[str, ...]]:
    """Each Additional IP block holding site IPs -> the sites whose IP it holds."""
    blocks: dict[IPv4Network, tuple[str, ...]] = {}
    for site in stack.sites:
        block = block_of(stack, site.public_ip)
        blocks[block] = (*blocks.get(block, ()), site.name)
    return blocks


def build_public_ips(stack: Stack, proxy: openstack.compute.Instance
                     ) -> list[ovh.cloudproject.FailoverIpAttach]:
    attaches = []
    for block in site_blocks(stack):
        attaches.append(ovh.cloudproject.FailoverIpAttach(
            f"additional-ip-{block.network_address}-{block.prefixlen}",
            ovh.cloudproject.FailoverIpAttachArgs(
                service_name=stack.ovh.project_id,
                ip=str(block.network_address),
                block=str(block),
                routed_to=proxy.id,
            ),
            # Losing the attachment takes every site on the block offline; OVH cannot even
            # detach a failover IP (the provider's delete is a no-op), so never let it churn.
            opts=pulumi.ResourceOptions(protect=True)))
    return attaches
