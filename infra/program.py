"""`build(stack)`: every OVH resource of one environment, from the model (issue 2).

Order follows the dependencies: credentials, network, security groups, hosts, then what points
at the hosts (public IPs, edge firewall, DNS) and the outputs. Each step lives in its module.
"""
from __future__ import annotations

from infra.dns import build_dns
from infra.firewall import build_edge_firewall
from infra.instances import build_instances, build_volumes
from infra.network import build_gateways, build_network
from infra.outputs import export_outputs, public_address
from infra.providers import openstack_provider
from infra.public_ips import build_public_ips
from infra.security_groups import build_security_groups
from model.types import Stack


def build(stack: Stack) -> None:
    _, provider = openstack_provider(stack)
    net = build_network(stack)
    build_gateways(stack, net)
    groups = build_security_groups(stack, provider)
    hosts = build_instances(stack, provider, net, groups)
    build_volumes(stack, provider, hosts)
    build_public_ips(stack, hosts["proxy"].instance)
    build_edge_firewall(stack, public_address(hosts["proxy"]), public_address(hosts["ops"]))
    dns = build_dns(stack)
    export_outputs(stack, hosts, dns)
