"""What each real stack registers: counts and types, placement, protection, providers."""
from __future__ import annotations

from collections import Counter

from infra.addressing import dhcp_pool, gateway_ip
from infra.mockrun import MockBuild
from model.topology import plan_hosts, private_addresses

INSTANCE = "openstack:compute/instance:Instance"
VOLUME = "openstack:blockstorage/volume:Volume"
ATTACH = "openstack:compute/volumeAttach:VolumeAttach"
IP_ATTACH = "ovh:CloudProject/failoverIpAttach:FailoverIpAttach"
NETWORK = "ovh:CloudProject/networkPrivate:NetworkPrivate"
SUBNET = "ovh:CloudProject/networkPrivateSubnetV2:NetworkPrivateSubnetV2"
GATEWAY = "ovh:CloudProject/gateway:Gateway"
VRACK = "ovh:Vrack/cloudProject:CloudProject"
USER = "ovh:CloudProject/user:User"
OS_PROVIDER = "pulumi:providers:openstack"
PORT = "openstack:networking/port:Port"

# Both real stacks: 2 sites, 6 hosts, both site IPs in one /29, one admin network / allowlist.
EXPECTED_COUNTS = {
    INSTANCE: 6, "tls:index/privateKey:PrivateKey": 6,
    PORT: 6,  # each host's vRack port, port security on
    VOLUME: 2, ATTACH: 2,
    VRACK: 1, NETWORK: 1, SUBNET: 2, GATEWAY: 2,
    USER: 1, OS_PROVIDER: 1,
    "openstack:networking/secGroup:SecGroup": 5,  # 4 roles in GRA11 + storage in SBG5
    "openstack:networking/secGroupRule:SecGroupRule": 14,
    IP_ATTACH: 1,
    "ovh:Ip/firewall:Firewall": 4,  # 2 site IPs, the proxy's and the bastion's own
    "ovh:Ip/firewallRule:FirewallRule": 19,
    "ovh:Domain/zoneRecord:ZoneRecord": 3,
}


def _instances(b: MockBuild) -> dict:
    return {r.name.removeprefix("vm-"): r for r in b.of_type(INSTANCE)}


def test_build_real_stacks_register_expected_resource_counts(built):
    _, b = built
    assert Counter(r.type for r in b.resources) == EXPECTED_COUNTS


def test_build_each_site_gets_own_web_host_key_firewall_and_records(built):
    stack, b = built
    names = {(r.type, r.name) for r in b.resources}
    for site in stack.sites:
        assert (INSTANCE, f"vm-web-{site.name}") in names
        assert ("tls:index/privateKey:PrivateKey", f"hostkey-web-{site.name}") in names
        assert ("ovh:Ip/firewall:Firewall", f"edge-fw-site-{site.name}") in names
        for name in site.names:
            assert ("ovh:Domain/zoneRecord:ZoneRecord", f"dns-{name}") in names


def test_build_public_network_only_proxy_and_ops_get_a_port(built):
    _, b = built
    public = {h for h, r in _instances(b).items()
              if any(n.get("name") == "Ext-Net" for n in r.inputs["networks"])}
    assert public == {"proxy", "ops"}


def test_build_instances_flavor_region_image_and_fixed_ip_follow_the_model(built):
    stack, b = built
    vms, addrs = _instances(b), private_addresses(stack)
    for plan in plan_hosts(stack):
        vm = vms[plan.name].inputs
        assert vm["flavorName"] == stack.flavors.for_role(plan.role)
        assert vm["region"] == plan.region
        assert vm["imageName"] == "Debian 13"
        assert "keyPair" not in vm  # certificates only, no plain key (R-GDPR-5)
        private = [n for n in vm["networks"] if "port" in n]
        assert private == [{"port": f"port-{plan.name}-id"}]
        port = b.get("openstack:networking/port:Port", f"port-{plan.name}").inputs
        assert port["networkId"] == f"os-net-{plan.region}"
        assert [f["ipAddress"] for f in port["fixedIps"]] == [str(addrs[plan.name])]
        assert vm["securityGroups"] == [f"hosting-{stack.environment}-{plan.role}"]
        assert vm["metadata"]["role"] == plan.role


def test_build_backup_b_far_region_everything_else_main_region(built):
    stack, b = built
    regions = {h: r.inputs["region"] for h, r in _instances(b).items()}
    assert regions.pop("backup-b") == stack.ovh.backup_b_region == "SBG5"
    assert set(regions.values()) == {stack.ovh.region}


def test_build_stateful_resources_protected(built):
    _, b = built
    protected = {(r.type, r.name) for r in b.resources if r.protect}
    assert protected == {
        (VRACK, "vrack-attach"), (NETWORK, "vrack-network"),
        (SUBNET, "subnet-GRA11"), (SUBNET, "subnet-SBG5"),
        (INSTANCE, "vm-backup-a"), (INSTANCE, "vm-backup-b"),
        (INSTANCE, "vm-web-villeparisis"), (INSTANCE, "vm-web-participation"),
        *((PORT, f"port-{h}") for h in ("backup-a", "backup-b", "web-villeparisis",
                                          "web-participation")),  # as their VMs
        (VOLUME, "volume-backup-a"), (VOLUME, "volume-backup-b"),
        (IP_ATTACH, next(r.name for r in b.of_type(IP_ATTACH))),
    }


def test_build_instances_ignore_user_data_changes_only(built):
    _, b = built
    assert {r.ignore_changes for r in b.of_type(INSTANCE)} == {("userData",)}
    others = [r for r in b.resources if r.type != INSTANCE and r.ignore_changes]
    assert others == []


def test_build_user_data_and_provider_password_are_secret(built):
    _, b = built
    assert all("userData" in r.secret_inputs for r in b.of_type(INSTANCE))
    assert "password" in b.get(OS_PROVIDER, "openstack").secret_inputs


def test_build_openstack_resources_use_the_project_user_provider(built):
    stack, b = built
    provider = b.get(OS_PROVIDER, "openstack").inputs
    assert provider["authUrl"] == "https://auth.cloud.ovh.net/v3/"
    assert provider["tenantId"] == stack.ovh.project_id
    assert provider["userName"] == "user-openstack-user"  # from the OVH user resource
    assert provider["region"] == stack.ovh.region
    user = b.get(USER, "openstack-user").inputs
    assert "administrator" not in user["roleNames"]
    for r in b.resources:
        if r.type.startswith("openstack:"):
            assert "pulumi:providers:openstack::openstack::" in r.provider, r.name


def test_build_volumes_sized_from_model_and_attached_to_their_storage_host(built):
    stack, b = built
    sizes = {r.name: (r.inputs["size"], r.inputs["region"]) for r in b.of_type(VOLUME)}
    assert sizes == {"volume-backup-a": (stack.storage.backup_a_volume_gb, stack.ovh.region),
                     "volume-backup-b": (stack.storage.backup_b_volume_gb,
                                         stack.ovh.backup_b_region)}
    attached = {r.name: (r.inputs["instanceId"], r.inputs["volumeId"]) for r in b.of_type(ATTACH)}
    assert attached == {f"volume-attach-{h}": (f"vm-{h}-id", f"volume-{h}-id")
                        for h in ("backup-a", "backup-b")}


def test_build_network_one_vlan_both_regions_subnet_and_gateway_each(built):
    stack, b = built
    net = b.get(NETWORK, "vrack-network").inputs
    assert net["vlanId"] == stack.network.vlan_id  # (arrives as a float; 20.0 == 20)
    assert net["regions"] == [stack.ovh.region, stack.ovh.backup_b_region]
    assert b.get(VRACK, "vrack-attach").inputs == {"serviceName": stack.ovh.vrack,
                                                     "projectId": stack.ovh.project_id}
    subnets = {r.inputs["region"]: r.inputs for r in b.of_type(SUBNET)}
    assert {s["cidr"] for s in subnets.values()} == {str(stack.network.private_cidr)}
    assert {s["networkId"] for s in subnets.values()} == {"os-net-GRA11", "os-net-SBG5"}
    gateways = {r.inputs["region"]: r.inputs for r in b.of_type(GATEWAY)}
    assert {g: gw["subnetId"] for g, gw in gateways.items()} == {
        "GRA11": "subnet-GRA11-id", "SBG5": "subnet-SBG5-id"}


def test_build_subnets_gateways_and_dhcp_pools_never_collide_with_hosts(built):
    stack, b = built
    hosts = set(private_addresses(stack).values())
    seen: set = set()
    for r in b.of_type(SUBNET):
        region = r.inputs["region"]
        start, end = dhcp_pool(stack, region)
        pool = {start + i for i in range(int(end) - int(start) + 1)}
        assert r.inputs["allocationPools"] == [{"start": str(start), "end": str(end)}]
        assert r.inputs["gatewayIp"] == str(gateway_ip(stack, region))
        assert not pool & hosts and gateway_ip(stack, region) not in hosts | pool
        assert not pool & seen  # the two regions' DHCP servers share one broadcast domain
        seen |= pool | {gateway_ip(stack, region)}


def test_build_site_ip_block_routed_to_the_proxy(built):
    stack, b = built
    (attach,) = b.of_type(IP_ATTACH)
    block = stack.network.public_ip_blocks[0]
    assert attach.inputs == {"serviceName": stack.ovh.project_id, "ip": str(block.network_address),
                             "block": str(block), "routedTo": "vm-proxy-id"}
    assert attach.deps["routedTo"] == ["vm-proxy"]
