"""A third site (the prod YAML with one more site) gets its web host, its IP, its records."""
from __future__ import annotations

from collections import Counter

from infra.policies import RULES, check_all, context_from_stack
from model.inventory import validate_inventory

from .test_infra_resources import EXPECTED_COUNTS

INSTANCE = "openstack:compute/instance:Instance"
IP_ATTACH = "ovh:CloudProject/failoverIpAttach:FailoverIpAttach"
RECORD = "ovh:Domain/zoneRecord:ZoneRecord"
EDGE_RULE = "ovh:Ip/firewallRule:FirewallRule"


def test_build_third_site_adds_exactly_its_own_resources(three_sites):
    _, b = three_sites
    added = Counter(r.type for r in b.resources) - Counter(EXPECTED_COUNTS)
    assert added == {
        INSTANCE: 1, "tls:index/privateKey:PrivateKey": 1,  # web-culture and its host key
        "openstack:networking/port:Port": 1,  # its vRack port
        IP_ATTACH: 1,  # its /32 is a new Additional IP block
        "ovh:Ip/firewall:Firewall": 1, EDGE_RULE: 4,  # its IP behind the edge firewall
        RECORD: 2,  # culture.villeparisis.fr and its www alias
        "openstack:networking/secGroupRule:SecGroupRule": 2,  # storage accepts .102 (2 regions)
    }


def test_build_third_site_web_host_private_only_at_next_address(three_sites):
    _, b = three_sites
    vm = b.get(INSTANCE, "vm-web-culture")
    assert vm.inputs["networks"] == [{"port": "port-web-culture-id"}]
    assert vm.state["networks"] == [{"port": "port-web-culture-id", "uuid": "os-net-GRA11",
                                     "fixedIpV4": "10.20.0.102"}]
    assert vm.protect and vm.ignore_changes == ("userData",)


def test_build_third_site_ip_attached_to_proxy_and_named_in_dns(three_sites):
    _, b = three_sites
    attach = b.get(IP_ATTACH, "additional-ip-198.51.100.40-32")
    assert (attach.inputs["block"], attach.inputs["routedTo"]) == ("198.51.100.40/32",
                                                                   "vm-proxy-id")
    targets = {r.name: r.inputs["target"] for r in b.of_type(RECORD)}
    assert targets["dns-culture.villeparisis.fr"] == "198.51.100.40"
    assert targets["dns-www.culture.villeparisis.fr"] == "198.51.100.40"
    ports = {r.inputs.get("destinationPort") for r in b.of_type(EDGE_RULE)
             if r.inputs["ipOnFirewall"] == "198.51.100.40"}
    assert ports == {None, 80.0, 443.0}


def test_build_third_site_inventory_and_policies_follow(three_sites):
    stack, b = three_sites
    doc = b.outputs["inventory"]
    validate_inventory(doc)
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert hosts["web-culture"]["private_ip"] == "10.20.0.102"
    assert hosts["proxy"]["site_ips"] == ["198.51.100.17", "198.51.100.18", "198.51.100.40"]
    assert check_all(b.policy_view(), context_from_stack(stack)) == {r.name: [] for r in RULES}
