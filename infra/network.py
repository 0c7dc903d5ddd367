"""The private network: the project in the vRack, one VLAN across both regions, a subnet and an
egress gateway per region.

Why OVH's `cloudproject.NetworkPrivate` rather than OpenStack networking: the VLAN id on the
vRack is an OVH notion (OpenStack networking cannot choose it), and OVH's examples create vRack
networks this way (`ovh_cloud_project_network_private` + subnet). One network with both regions
and the same subnet in each is OVH's "multi-region" private network: one broadcast domain, so
backup-b in the far region reaches the web hosts directly (R-BKP-3).

Web and storage hosts have no public port (R-HOST-1) but still need Debian security updates
(R-INC-2) and their codebase: an OVH Public Cloud Gateway per region gives them outbound-only
SNAT; nothing inbound can reach them through it.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_ovh as ovh

from infra.addressing import dhcp_pool, gateway_ip, regions
from model.types import Stack

NETWORK_TYPE = "ovh:CloudProject/networkPrivate:NetworkPrivate"
GATEWAY_MODEL = "s"  # the smallest OVH gateway: egress for a handful of hosts


@dataclass(frozen=True)
class PrivateNetwork:
    network: ovh.cloudproject.NetworkPrivate
    subnets: dict[str, ovh.cloudproject.NetworkPrivateSubnetV2]  # region -> subnet

    def openstack_id(self, region: str) -> pulumi.Output[str]:
        """The OpenStack network id of the vRack network in one region (instances need it)."""
        return self.network.regions_openstack_ids.apply(lambda ids: ids[region])


def build_network(stack: Stack) -> PrivateNetwork:
    # Detaching the project from the vRack, or deleting the network or a subnet, cuts every
    # host off from the others: all protected.
    protected = pulumi.ResourceOptions(protect=True)
    attach = ovh.vrack.CloudProject("vrack-attach", ovh.vrack.CloudProjectArgs(
        service_name=stack.ovh.vrack, project_id=stack.ovh.project_id), opts=protected)
    net = ovh.cloudproject.NetworkPrivate("vrack-network", ovh.cloudproject.NetworkPrivateArgs(
        service_name=stack.ovh.project_id,
        name=f"hosting-{stack.environment}",
        vlan_id=stack.network.vlan_id,
        regions=list(regions(stack)),
    ), opts=pulumi.ResourceOptions(protect=True, depends_on=[attach]))
    result = PrivateNetwork(net, {})
    for region in regions(stack):
        start, end = dhcp_pool(stack, region)
        result.subnets[region] = ovh.cloudproject.NetworkPrivateSubnetV2(
            f"subnet-{region}", ovh.cloudproject.NetworkPrivateSubnetV2Args(
                service_name=stack.ovh.project_id,
                network_id=result.openstack_id(region),
                region=region,
                name=f"hosting-{stack.environment}-{region}",
                cidr=str(stack.network.private_cidr),
                dhcp=True,
                allocation_pools=[ovh.cloudproject.NetworkPrivateSubnetV2AllocationPoolArgs(
                    start=str(start), end=str(end))],
                enable_gateway_ip=True,
                gateway_ip=str(gateway_ip(stack, region)),
            ), opts=protected)
    return result


def build_gateways(stack: Stack, net: PrivateNetwork) -> dict[str, ovh.cloudproject.Gateway]:
    """Outbound-only egress for private hosts, one per region (gateways are regional)."""
    return {region: ovh.cloudproject.Gateway(f"gateway-{region}", ovh.cloudproject.GatewayArgs(
        service_name=stack.ovh.project_id,
        name=f"hosting-{stack.environment}-{region}",
        model=GATEWAY_MODEL,
        region=region,
        network_id=net.openstack_id(region),
        subnet_id=subnet.id,
    )) for region, subnet in net.subnets.items()}
