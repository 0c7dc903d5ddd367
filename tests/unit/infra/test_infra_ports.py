"""Each host's vRack port (issue 19 item 6, R-GDPR-2, R-GDPR-4): an explicit
`openstack.networking.Port` with port security on, only the host's planned address, its role's
security group and no allowed address pairs, so Neutron drops whatever the instance sends from
another MAC or address. Checked on what both real stacks (and a third site) register under
Pulumi's mocks, and the policy rule `private-ports-locked` on broken copies of them."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from infra import policies as P
from infra.mockrun import MockBuild
from model.topology import plan_hosts, private_addresses

INSTANCE = "openstack:compute/instance:Instance"
PORT = "openstack:networking/port:Port"
SG = "openstack:networking/secGroup:SecGroup"


def _ports(b: MockBuild) -> dict[str, Any]:
    return {r.name.removeprefix("port-"): r for r in b.of_type(PORT)}


def test_build_every_instance_private_network_goes_through_its_own_port(built):
    stack, b = built
    for plan in plan_hosts(stack):
        vm = b.get(INSTANCE, f"vm-{plan.name}")
        private = [n for n in vm.inputs["networks"] if n.get("name") != "Ext-Net"]
        assert private == [{"port": f"port-{plan.name}-id"}], plan.name
        assert f"port-{plan.name}" in vm.deps["networks"]


def test_build_every_port_has_port_security_on_and_no_address_pairs(built):
    stack, b = built
    ports = _ports(b)
    assert set(ports) == {p.name for p in plan_hosts(stack)}
    for name, port in ports.items():
        assert port.inputs["portSecurityEnabled"] is True, name
        assert port.inputs.get("allowedAddressPairs", []) == [], name
        assert not port.inputs.get("noSecurityGroups"), name


def test_build_every_port_holds_only_the_planned_address_on_the_hosts_region_subnet(built):
    stack, b = built
    addrs, ports = private_addresses(stack), _ports(b)
    for plan in plan_hosts(stack):
        port = ports[plan.name]
        assert port.inputs["region"] == plan.region
        assert port.inputs["networkId"] == f"os-net-{plan.region}"
        assert port.inputs["fixedIps"] == [{"subnetId": f"subnet-{plan.region}-id",
                                            "ipAddress": str(addrs[plan.name])}]
        assert "subnet-" + plan.region in port.deps["fixedIps"]


def test_build_every_port_carries_its_roles_security_group_in_its_region(built):
    stack, b = built
    ports = _ports(b)
    for plan in plan_hosts(stack):
        assert ports[plan.name].inputs["securityGroupIds"] == [
            f"sg-{plan.role}-{plan.region}-id"], plan.name
        assert ports[plan.name].deps["securityGroupIds"] == [f"sg-{plan.role}-{plan.region}"]


def test_build_ports_of_stateful_hosts_are_protected_like_their_vms(built):
    _, b = built
    for name, port in _ports(b).items():
        assert port.protect == b.get(INSTANCE, f"vm-{name}").protect, name


def test_build_inventory_private_addresses_are_read_back_from_the_ports(built):
    stack, b = built
    addrs = private_addresses(stack)
    seen = {h["name"]: h["private_ip"] for h in b.outputs["inventory"]["hosts"]}
    assert seen == {name: str(ip) for name, ip in addrs.items()}


def test_build_third_site_web_host_gets_a_locked_port_too(three_sites):
    _, b = three_sites
    port = b.get(PORT, "port-web-culture")
    assert port.inputs["portSecurityEnabled"] is True
    assert port.inputs["fixedIps"][0]["ipAddress"] == "10.20.0.102"


# -- the policy rule -------------------------------------------------------------------------
def _view(builds: dict) -> list[dict[str, Any]]:
    return copy.deepcopy(builds["prod"][1].policy_view())


def _one(rs: list[dict[str, Any]], token: str, name: str) -> dict[str, Any]:
    return next(r for r in rs if r["type"] == token and r["name"] == name)


@pytest.mark.parametrize("env", ["prod", "preprod"])
def test_check_private_ports_locked_real_stacks_pass(builds, env):
    assert P.check_private_ports_locked(builds[env][1].policy_view()) == []


@pytest.mark.parametrize("value", [False, None])
def test_check_private_ports_locked_port_security_off_or_unset_fails(builds, value):
    rs = _view(builds)
    _one(rs, PORT, "port-web-villeparisis")["props"]["portSecurityEnabled"] = value
    assert P.check_private_ports_locked(rs) == [
        "Port port-web-villeparisis: port security is not enabled (forged sources pass)"]


def test_check_private_ports_locked_allowed_address_pair_fails(builds):
    rs = _view(builds)
    _one(rs, PORT, "port-web-villeparisis")["props"]["allowedAddressPairs"] = [
        {"ipAddress": "10.20.0.10"}]
    assert P.check_private_ports_locked(rs) == [
        "Port port-web-villeparisis: allowed address pairs let it send from other addresses"]


def test_check_private_ports_locked_second_fixed_ip_fails(builds):
    rs = _view(builds)
    fixed = _one(rs, PORT, "port-web-villeparisis")["props"]["fixedIps"]
    fixed.append({"subnetId": "subnet-GRA11-id", "ipAddress": "10.20.0.10"})
    assert P.check_private_ports_locked(rs) == [
        "Port port-web-villeparisis: exactly one fixed IP address expected, got 2"]


def test_check_private_ports_locked_port_without_security_group_fails(builds):
    rs = _view(builds)
    _one(rs, PORT, "port-backup-a")["props"]["securityGroupIds"] = []
    assert P.check_private_ports_locked(rs) == ["Port port-backup-a: no security group"]


def test_check_private_ports_locked_instance_joining_by_network_uuid_fails(builds):
    rs = _view(builds)
    vm = _one(rs, INSTANCE, "vm-web-participation")
    vm["props"]["networks"] = [{"uuid": "os-net-GRA11", "fixedIpV4": "10.20.0.101"}]
    assert P.check_private_ports_locked(rs) == [
        "Instance vm-web-participation: private network joined without an explicit port"]


def test_check_private_ports_locked_port_made_elsewhere_fails(builds):
    rs = _view(builds)
    _one(rs, INSTANCE, "vm-ops")["deps"]["networks"] = []
    assert P.check_private_ports_locked(rs) == [
        "Instance vm-ops: its private port is not one of this program's ports"]


def test_rules_include_private_ports_locked():
    assert "private-ports-locked" in [r.name for r in P.RULES]
