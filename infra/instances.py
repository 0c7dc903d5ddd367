"""The VMs of DESIGN.md's topology, their first-boot trust, and the backup volumes.

Only the proxy and the bastion (ops) get a port on OVH's public network (Ext-Net); web and
storage hosts are on the vRack only (R-HOST-1). Cloud-init user data comes from
`model.bootstrap.cloud_config` -- the same files the lab writes -- with a host key Pulumi
generated, so the inventory knows each host's fingerprint before it boots (R-GDPR-5).

Each host's vRack port is an explicit `openstack.networking.Port` (issue 19, R-GDPR-2,
R-GDPR-4): port security on, its one planned fixed IP, its role's security group, no allowed
address pairs. Neutron's port security then drops whatever the instance sends from another MAC
or IPv4 address (and ARP claiming another address): a compromised web host cannot pass for
the proxy or the bastion on the private network. It is set on the port itself because OVH left
it off on private networks made before its Stein upgrade (September 2022) and a port's setting
does not follow the network's later (docs/infra.md, "Forged sources on the vRack").
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack
import pulumi_tls as tls
from pulumi_openstack.blockstorage import VolumeArgs
from pulumi_openstack.compute import VolumeAttachArgs

from infra.addressing import private_ip
from infra.hostkeys import host_key
from infra.network import PrivateNetwork
from infra.providers import os_opts
from model.bootstrap import cloud_config
from model.topology import HostPlan, plan_hosts
from model.types import Role, Stack

IMAGE = "Debian 13"  # trixie: PHP 8.4, MariaDB 11.8, OpenSSH 10 (DESIGN.md, R-MNT-3)
PUBLIC_NETWORK = "Ext-Net"  # OVH's public network in every region
VOLUME_TYPE = "classic"  # backups need capacity, not IOPS
# Hosts whose loss loses data: storage servers (off-site backups) and web hosts (the site's
# database and files). Removing one must be a deliberate act (R-GDPR-8), never a side effect.
STATEFUL_ROLES: tuple[Role, ...] = ("web", "storage")


@dataclass(frozen=True)
class Host:
    plan: HostPlan
    instance: openstack.compute.Instance
    key: tls.PrivateKey
    private_port: openstack.networking.Port | None = None


def metadata(stack: Stack, plan: HostPlan) -> dict[str, str]:
    """Instance metadata the policy pack reads (policy/): role and exposure come from the model."""
    return {"environment": stack.environment, "role": plan.role, "host": plan.name,
            "indexable": "true" if stack.exposure.indexable else "false"}


def _user_data(stack: Stack, plan: HostPlan, key: tls.PrivateKey) -> pulumi.Output[str]:
    doc = pulumi.Output.all(key.private_key_openssh, key.public_key_openssh).apply(
        lambda k: cloud_config(stack, plan, host_key_private=k[0], host_key_public=k[1]))
    return pulumi.Output.secret(doc)  # it holds the host's private key


def private_port_args(stack: Stack, plan: HostPlan, net: PrivateNetwork,
                      group: openstack.networking.SecGroup) -> openstack.networking.PortArgs:
    """The host's vRack port: only its own planned address, port security on, no extra
    address pairs (no other IP or MAC may leave through it), its role's security group."""
    return openstack.networking.PortArgs(
        name=f"hosting-{stack.environment}-{plan.name}-private",
        description=f"hosting {stack.environment}: {plan.name} on the vRack (infra/instances.py)",
        region=plan.region,
        network_id=net.openstack_id(plan.region),
        fixed_ips=[openstack.networking.PortFixedIpArgs(
            subnet_id=net.subnets[plan.region].id, ip_address=str(private_ip(stack, plan.name)))],
        port_security_enabled=True,
        allowed_address_pairs=[],
        security_group_ids=[group.id],
        admin_state_up=True,
    )


def _networks(plan: HostPlan, port: openstack.networking.Port
              ) -> list[openstack.compute.InstanceNetworkArgs]:
    # Public port first: it carries the default route of the proxy and the bastion. The
    # private one is the explicit port (Nova refuses a fixed IP beside a port: the port has it).
    public = [openstack.compute.InstanceNetworkArgs(name=PUBLIC_NETWORK)] if plan.public else []
    return [*public, openstack.compute.InstanceNetworkArgs(port=port.id)]


def build_instances(stack: Stack, provider: openstack.Provider, net: PrivateNetwork,
                    groups: dict[tuple[str, Role], openstack.networking.SecGroup]
                    ) -> dict[str, Host]:
    hosts: dict[str, Host] = {}
    for plan in plan_hosts(stack):
        key = host_key(plan.name)
        group = groups[(plan.region, plan.role)]
        port = openstack.networking.Port(
            f"port-{plan.name}", private_port_args(stack, plan, net, group),
            opts=os_opts(provider, protect=plan.role in STATEFUL_ROLES,
                         depends_on=[net.subnets[plan.region]]))
        vm = openstack.compute.Instance(f"vm-{plan.name}", openstack.compute.InstanceArgs(
            name=f"hosting-{stack.environment}-{plan.name}",
            region=plan.region,
            flavor_name=stack.flavors.for_role(plan.role),
            image_name=IMAGE,
            networks=_networks(plan, port),
            # Applies to the ports Nova makes (Ext-Net); the private port carries its own.
            security_groups=[group.name],
            user_data=_user_data(stack, plan, key),
            metadata=metadata(stack, plan),
            # No key_pair: logins are by CA-signed certificate only (R-GDPR-5).
        ), opts=os_opts(
            provider,
            protect=plan.role in STATEFUL_ROLES,
            # Changing user data would rebuild the VM (and an imported one gets reinstalled):
            # cloud-init runs once; later changes are `fab deploy`'s job.
            ignore_changes=["user_data"],
            depends_on=[net.subnets[plan.region]],
        ))
        hosts[plan.name] = Host(plan, vm, key, port)
    return hosts


def build_volumes(stack: Stack, provider: openstack.Provider, hosts: dict[str, Host]) -> None:
    """The backup repositories' block storage, on each storage server (R-BKP-2, R-BKP-3)."""
    sizes = {"a": stack.storage.backup_a_volume_gb, "b": stack.storage.backup_b_volume_gb}
    for host in hosts.values():
        plan = host.plan
        if plan.role != "storage" or plan.tier is None:
            continue
        volume = openstack.blockstorage.Volume(f"volume-{plan.name}", VolumeArgs(
            name=f"hosting-{stack.environment}-{plan.name}-backups",
            region=plan.region, size=sizes[plan.tier], volume_type=VOLUME_TYPE,
            enable_online_resize=True,  # grow without detaching
            metadata=metadata(stack, plan),
        ), opts=os_opts(provider, protect=True))  # the backups themselves
        openstack.compute.VolumeAttach(f"volume-attach-{plan.name}", VolumeAttachArgs(
            instance_id=host.instance.id, volume_id=volume.id, region=plan.region,
        ), opts=os_opts(provider))
