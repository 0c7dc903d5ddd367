"""Stack outputs: the inventory document (the hinge to `fab deploy`), DNS and host keys.

The inventory is built by `model.inventory.build_inventory` -- the same code the lab uses --
from what OpenStack returned for each instance (its real addresses) and the fingerprints of
the keys Pulumi generated, and validated against the committed schema before it is exported.
It holds no secret: private keys stay in the (secret) user data; database passwords are
referenced, not inlined.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import ip_address
from typing import Any

import pulumi

from infra.addressing import private_ip
from infra.hostkeys import fingerprint
from infra.instances import PUBLIC_NETWORK, Host
from model.inventory import HostAddresses, build_inventory, validate_inventory
from model.topology import HostPlan, plan_hosts
from model.types import Stack


def _field(entry: Any, snake: str, camel: str) -> Any:
    """Read a nested output field, whether the SDK gives a typed object or a plain mapping."""
    if hasattr(type(entry), snake):  # typed output class (a dict subclass with getters)
        return getattr(entry, snake)
    if isinstance(entry, Mapping):
        return entry.get(snake, entry.get(camel))
    return None


def observed_addresses(stack: Stack, plan: HostPlan, networks: Sequence[Any],
                       site_ips: Sequence[str]) -> HostAddresses:
    """A host's addresses as OpenStack reports them, checked against the address plan: the
    security groups name hosts by their planned address, so a mismatch is a security bug."""
    private = public = None
    for entry in networks or ():
        ip = _field(entry, "fixed_ip_v4", "fixedIpV4")
        if _field(entry, "name", "name") == PUBLIC_NETWORK:
            public = ip
        elif ip and ip_address(ip) in stack.network.private_cidr:
            private = ip
    planned = str(private_ip(stack, plan.name))
    if private != planned:
        raise ValueError(f"{plan.name}: OpenStack gave private address {private!r}, the plan "
                         f"says {planned} (security groups rely on it)")
    if plan.public and not public:
        raise ValueError(f"{plan.name}: no address on {PUBLIC_NETWORK}")
    return HostAddresses(plan.name, private, public if plan.public else None,
                         tuple(site_ips) if plan.role == "proxy" else ())


def inventory(stack: Stack, observed: Mapping[str, tuple[Sequence[Any], str]]) -> dict[str, Any]:
    """observed: host -> (instance networks, host public key). Raises if the document would not
    validate, which fails `pulumi up` before anything downstream reads a bad inventory."""
    site_ips = {s.name: str(s.public_ip) for s in stack.sites}
    plans = {p.name: p for p in plan_hosts(stack)}
    hosts = [observed_addresses(stack, plans[h], nets, list(site_ips.values()))
             for h, (nets, _) in observed.items()]
    doc = build_inventory(stack, source="pulumi", hosts=hosts, site_public_ips=site_ips,
                          host_key_fingerprints={h: fingerprint(k)
                                                 for h, (_, k) in observed.items()})
    validate_inventory(doc)
    return doc


def public_address(host: Host) -> pulumi.Output[str]:
    """The address OVH gave the host on its public network (the edge firewall protects it)."""
    def pick(networks: Sequence[Any]) -> str:
        for entry in networks or ():
            if _field(entry, "name", "name") == PUBLIC_NETWORK:
                return str(_field(entry, "fixed_ip_v4", "fixedIpV4"))
        raise ValueError(f"{host.plan.name}: no address on {PUBLIC_NETWORK}")
    return host.instance.networks.apply(pick)


def export_outputs(stack: Stack, hosts: Mapping[str, Host], dns: Mapping[str, str]) -> None:
    names = list(hosts)
    observed = pulumi.Output.all(*(pulumi.Output.all(h.instance.networks,
                                                      h.key.public_key_openssh)
                                   for h in hosts.values()))
    pulumi.export("inventory", observed.apply(
        lambda seen: inventory(stack, {n: (s[0], s[1]) for n, s in zip(names, seen, strict=True)})))
    # For `fab ca.sign-hosts`: the public keys to sign, known before any host answers.
    pulumi.export("host_public_keys", {n: h.key.public_key_openssh for n, h in hosts.items()})
    pulumi.export("dns_records", dict(dns))
