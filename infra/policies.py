"""Policy rules as plain functions over a simple list of resources (issue 2).

A resource is a mapping: {"type": token, "name": logical name, "props": camelCase properties,
"protect": bool, "deps": {property: [names of resources it came from]} (optional)}. The same
shape comes from the unit-test mocks (`MockBuild.policy_view`) and from `pulumi preview
--policy-pack policy/` (policy/__main__.py adapts pulumi_policy's resources), so each rule is
tested directly and enforced for real. Every check returns its violations as sentences; an
empty list means the stack complies.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any

from model.fields import FRENCH_REGION
from model.types import Stack

Resource = Mapping[str, Any]
# Pulumi's "not known until apply" sentinels (preview): string, bool, number, array, object.
UNKNOWNS = frozenset({"04da6b54-80e4-46f7-96ec-b56ff0331ba9",
                      "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
                      "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
                      "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
                      "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"})

INSTANCE = "openstack:compute/instance:Instance"
PORT = "openstack:networking/port:Port"
VOLUME = "openstack:blockstorage/volume:Volume"
SG_RULE = "openstack:networking/secGroupRule:SecGroupRule"
EDGE_FIREWALL = "ovh:Ip/firewall:Firewall"
EDGE_RULE = "ovh:Ip/firewallRule:FirewallRule"
IP_ATTACH = "ovh:CloudProject/failoverIpAttach:FailoverIpAttach"
DNS_RECORD = "ovh:Domain/zoneRecord:ZoneRecord"
PUBLIC_NETWORK = "Ext-Net"
PRIVATE_ROLES = ("web", "storage")


@dataclass(frozen=True)
class PolicyContext:
    """What the rules need from the model (the stack file), not from the resources."""
    environment: str
    indexable: bool
    dns_zone: str
    sites: tuple[tuple[str, tuple[str, ...]], ...]  # site -> its domain and aliases


def context_from_stack(stack: Stack) -> PolicyContext:
    return PolicyContext(stack.environment, stack.exposure.indexable, stack.ovh.dns_zone,
                         tuple((s.name, s.names) for s in stack.sites))


# -- helpers -------------------------------------------------------------------------------
def _of(resources: Iterable[Resource], token: str) -> list[Resource]:
    return [r for r in resources if r["type"] == token]


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and value in UNKNOWNS)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _label(r: Resource) -> str:
    return f"{r['type'].rsplit(':', 1)[-1]} {r['name']}"


def _world(source: Any) -> bool:
    """Open to everybody: no source at all, or a /0."""
    if source in (None, ""):
        return True
    return _known(source) and ip_network(str(source), strict=False).prefixlen == 0


def _role(r: Resource) -> str | None:
    return _map(r["props"].get("metadata")).get("role")


def _covers(low: Any, high: Any, port: int) -> bool:
    if low in (None, 0) and high in (None, 0):
        return True  # no range: every port
    return _known(low) and _known(high) and int(low) <= port <= int(high)


def _sg_open_to_world(rule: Resource, port: int) -> bool:
    p = rule["props"]
    return (p.get("direction") == "ingress" and p.get("protocol") in (None, "", "tcp")
            and _covers(p.get("portRangeMin"), p.get("portRangeMax"), port)
            and not p.get("remoteGroupId") and _world(p.get("remoteIpPrefix")))


def _edge_open_to_world(rule: Resource, port: int) -> bool:
    p = rule["props"]
    return (p.get("action") == "permit" and p.get("protocol") in ("tcp", "ipv4")
            and p.get("destinationPort") in (None, port, float(port))
            and p.get("tcpOption") != "established"  # answers only: opens no port
            and _world(p.get("source")))


def _public_port(instance: Resource) -> bool:
    nets = _list(instance["props"].get("networks"))
    return any(_map(n).get("name") == PUBLIC_NETWORK for n in nets)


def _instances_by_name(resources: Sequence[Resource]) -> dict[str, Resource]:
    return {r["name"]: r for r in _of(resources, INSTANCE)}


# -- the rules -----------------------------------------------------------------------------
def check_french_regions(resources: Sequence[Resource]) -> list[str]:
    """R-GDPR-7: every region any resource names is an OVHcloud region in France."""
    bad = []
    for r in resources:
        p = r["props"]
        for region in [p.get("region"), *_list(p.get("regions"))]:
            if _known(region) and not re.fullmatch(FRENCH_REGION, str(region)):
                bad.append(f"{_label(r)}: region {region!r} is not in France (R-GDPR-7)")
    return bad


def check_no_world_open_ssh(resources: Sequence[Resource]) -> list[str]:
    """R-GDPR-5/6: neither a security group nor the edge firewall opens SSH to the world."""
    bad = [f"{_label(r)}: SSH (22) open to the whole Internet (R-GDPR-6)"
           for r in _of(resources, SG_RULE) if _sg_open_to_world(r, 22)]
    bad += [f"{_label(r)}: edge firewall permits SSH (22) from anywhere (R-GDPR-6)"
            for r in _of(resources, EDGE_RULE) if _edge_open_to_world(r, 22)]
    return bad


def check_private_hosts_have_no_public_ip(resources: Sequence[Resource]) -> list[str]:
    """R-HOST-1: web and storage hosts have no public port and no Additional IP routed to them."""
    instances = _instances_by_name(resources)
    bad = [f"{_label(r)}: {_role(r)} host has a port on {PUBLIC_NETWORK} (R-HOST-1)"
           for r in instances.values() if _role(r) in PRIVATE_ROLES and _public_port(r)]
    for attach in _of(resources, IP_ATTACH):
        for target in _map(attach.get("deps")).get("routedTo", []):
            if _role(instances.get(target, {"props": {}})) in PRIVATE_ROLES:
                bad.append(f"{_label(attach)}: public IP routed to {target} (R-HOST-1)")
    return bad


def check_each_site_has_own_ip(resources: Sequence[Resource], ctx: PolicyContext) -> list[str]:
    """R-HOST-2: every name of a site resolves to one IP, no other site shares it, and the
    IP is attached (by its Additional IP block) to the reverse proxy."""
    zone = ctx.dns_zone
    targets: dict[str, set[str]] = {}
    for r in _of(resources, DNS_RECORD):
        p = r["props"]
        if p.get("fieldtype") == "A" and p.get("zone") == zone:
            name = f"{p['subdomain']}.{zone}" if p.get("subdomain") else zone
            targets.setdefault(name, set()).add(str(p.get("target")))
    bad: list[str] = []
    owner: dict[str, str] = {}
    attached = [(ip_network(str(a["props"].get("block")), strict=False),
                 _map(a.get("deps")).get("routedTo", []))
                for a in _of(resources, IP_ATTACH) if _known(a["props"].get("block"))]
    instances = _instances_by_name(resources)
    for site, names in ctx.sites:
        ips = set().union(*(targets.get(n, set()) for n in names))
        missing = [n for n in names if n not in targets]
        if missing:
            bad.append(f"site {site}: no A record for {', '.join(missing)}")
        if len(ips) != 1:
            bad.append(f"site {site}: its names resolve to {sorted(ips) or 'nothing'}, not "
                       "exactly one IP (R-HOST-2)")
            continue
        ip = ips.pop()
        if ip in owner:
            bad.append(f"site {site}: shares {ip} with site {owner[ip]} (R-HOST-2)")
        owner[ip] = site
        routes = [t for block, t in attached if ip_address(ip) in block]
        if not any(_role(instances.get(n, {"props": {}})) == "proxy" for t in routes for n in t):
            bad.append(f"site {site}: {ip} is not attached to the reverse proxy (R-HOST-1/2)")
    return bad


def check_storage_protected(resources: Sequence[Resource]) -> list[str]:
    """Storage servers and backup volumes carry `protect`: no accidental destroy (R-BKP-2/3)."""
    stateful = [r for r in _of(resources, INSTANCE) if _role(r) == "storage"]
    stateful += _of(resources, VOLUME)
    return [f"{_label(r)}: not protected (protect=True expected)" for r in stateful
            if not r.get("protect")]


def check_not_indexable(resources: Sequence[Resource], ctx: PolicyContext) -> list[str]:
    """R-HOST-3 / DESIGN.md: preprod is never publicly reachable over HTTP(S) (IP allowlist at
    the security groups and the edge firewall), and its hosts know they must send noindex."""
    if ctx.environment != "preprod" and ctx.indexable:
        return []
    bad = [] if not ctx.indexable else ["preprod stack marked indexable in the model"]
    for port in (80, 443):
        bad += [f"{_label(r)}: port {port} open to the whole Internet in a non-indexable stack"
                for r in _of(resources, SG_RULE) if _sg_open_to_world(r, port)]
        bad += [f"{_label(r)}: edge firewall permits port {port} from anywhere in a "
                "non-indexable stack" for r in _of(resources, EDGE_RULE)
                if _edge_open_to_world(r, port)]
    for r in _of(resources, INSTANCE):
        flag = _map(r["props"].get("metadata")).get("indexable")
        if flag != "false":
            bad.append(f"{_label(r)}: metadata indexable={flag!r}, expected 'false' (as the "
                       "inventory's flag the proxy's noindex header follows)")
    return bad


def check_edge_firewall_on_site_ips(resources: Sequence[Resource], ctx: PolicyContext
                                    ) -> list[str]:
    """R-GDPR-6: every site IP sits behind an enabled edge firewall whose last rule denies."""
    ips = {str(p.get("target")) for r in _of(resources, DNS_RECORD) if (p := r["props"])}
    enabled = {r["props"].get("ipOnFirewall") for r in _of(resources, EDGE_FIREWALL)
               if r["props"].get("enabled") is True}
    denies = {r["props"].get("ipOnFirewall") for r in _of(resources, EDGE_RULE)
              if r["props"].get("action") == "deny" and r["props"].get("protocol") == "ipv4"}
    return [f"site IP {ip}: no enabled edge firewall ending in a deny-all rule (R-GDPR-6)"
            for ip in sorted(ips) if ip not in enabled or ip not in denies]


def check_private_ports_locked(resources: Sequence[Resource]) -> list[str]:
    """Issue 19 (R-GDPR-2, R-GDPR-4): every instance joins the private network through an
    explicit port of this program with port security on, exactly one fixed address, a security
    group and no allowed address pairs, so it can send only from its own MAC and address (a
    port Nova makes takes the network's default, which OVH left off on older vRack networks)."""
    ports = {r["name"]: r for r in _of(resources, PORT)}
    bad = []
    for r in ports.values():
        p = r["props"]
        if p.get("portSecurityEnabled") is not True:
            bad.append(f"{_label(r)}: port security is not enabled (forged sources pass)")
        if _list(p.get("allowedAddressPairs")):
            bad.append(f"{_label(r)}: allowed address pairs let it send from other addresses")
        fixed = _list(p.get("fixedIps"))
        if len(fixed) != 1 or not _known(_map(fixed[0]).get("ipAddress")):
            bad.append(f"{_label(r)}: exactly one fixed IP address expected, got {len(fixed)}")
        if p.get("noSecurityGroups") is True or not _list(p.get("securityGroupIds")):
            bad.append(f"{_label(r)}: no security group")
    for r in _of(resources, INSTANCE):
        private = [n for n in map(_map, _list(r["props"].get("networks")))
                   if n.get("name") != PUBLIC_NETWORK]
        if not private or any(not n.get("port") for n in private):
            bad.append(f"{_label(r)}: private network joined without an explicit port")
        elif not set(_map(r.get("deps")).get("networks", [])) & ports.keys():
            bad.append(f"{_label(r)}: its private port is not one of this program's ports")
    return bad


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[Sequence[Resource], PolicyContext], list[str]]


RULES: tuple[Rule, ...] = (
    Rule("french-regions-only", "Every region is an OVHcloud region in France (R-GDPR-7)",
         lambda rs, _: check_french_regions(rs)),
    Rule("no-world-open-ssh", "No security group or edge firewall opens SSH to the Internet",
         lambda rs, _: check_no_world_open_ssh(rs)),
    Rule("private-hosts-no-public-ip", "Web and storage hosts have no public IP (R-HOST-1)",
         lambda rs, _: check_private_hosts_have_no_public_ip(rs)),
    Rule("each-site-own-ip", "Each site has its own public IP on the proxy (R-HOST-2)",
         check_each_site_has_own_ip),
    Rule("storage-protected", "Storage servers and volumes are protected",
         lambda rs, _: check_storage_protected(rs)),
    Rule("preprod-not-indexable", "Preprod is not publicly reachable or indexable",
         check_not_indexable),
    Rule("edge-firewall-on-site-ips", "Every site IP is behind OVH's edge firewall (R-GDPR-6)",
         check_edge_firewall_on_site_ips),
    Rule("private-ports-locked", "Every private port has port security on and sends only from "
         "its own address (issue 19)", lambda rs, _: check_private_ports_locked(rs)),
)


def check_all(resources: Sequence[Resource], ctx: PolicyContext) -> dict[str, list[str]]:
    return {rule.name: rule.check(resources, ctx) for rule in RULES}
