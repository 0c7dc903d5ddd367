"""The stack as the lab serves it: the model's hosts, with lab addresses and lab CAs.

The model is the single source of truth for what exists (hosts, roles, sites); the lab only
swaps what belongs to OVH (address plan, admin networks, CA public keys) for its own, then
re-runs the model's cross-field checks so a lab stack is as valid as the original.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from lab import mail_sink
from lab.config import LabConfig
from model import ConfigErrors, Stack, load_stack
from model.errors import ErrorList
from model.rules import check_stack
from model.topology import HostPlan, plan_hosts, private_addresses
from model.types import Monitoring

# Public side: the machine first, then the public hosts, then one address per site (as an OVH
# Additional IP block would give), so adding a site never renumbers a host.
_PUBLIC_OFFSETS = {"proxy": 10, "ops": 11}
_SITE_FIRST = 16


@dataclass(frozen=True)
class LabHost:
    plan: HostPlan
    private_ip: IPv4Address
    public_ip: IPv4Address | None
    site_ips: tuple[IPv4Address, ...]

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def cert_principals(self) -> list[str]:
        """What the host certificate is valid for: its name and its own addresses (as the
        inventory's host_cert_principals)."""
        return [self.name, str(self.private_ip), *([str(self.public_ip)] if self.public_ip else [])]


@dataclass(frozen=True)
class LabPlan:
    stack: Stack
    hosts: tuple[LabHost, ...]
    machine_public: IPv4Interface
    machine_private: IPv4Interface
    site_ips: dict[str, str]

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no lab host {name!r}; hosts: {', '.join(h.name for h in self.hosts)}")


def make_plan(cfg: LabConfig, user_ca_public: str, host_ca_public: str) -> LabPlan:
    stack = load_stack(cfg.stack_file)
    pub, priv = cfg.public_net, cfg.private_net
    machine_public = IPv4Interface(f"{pub.network_address + 1}/{pub.prefixlen}")
    machine_private = IPv4Interface(f"{priv.network_address + 1}/{priv.prefixlen}")
    site_ips = {s.name: pub.network_address + _SITE_FIRST + i for i, s in enumerate(stack.sites)}
    if site_ips and max(site_ips.values()) >= pub.broadcast_address:
        raise ValueError(f"public range {pub} is too small for {len(site_ips)} sites")
    lab = lab_stack(stack, cfg, machine_public, site_ips, user_ca_public, host_ca_public)
    private = private_addresses(lab, priv)
    hosts = []
    for plan in plan_hosts(lab):
        public_ip = pub.network_address + _PUBLIC_OFFSETS[plan.name] if plan.public else None
        extra = tuple(site_ips[s] for s in plan.sites) if plan.role == "proxy" else ()
        hosts.append(LabHost(plan, private[plan.name], public_ip, extra))
    return LabPlan(lab, tuple(hosts), machine_public, machine_private,
                   {k: str(v) for k, v in site_ips.items()})


def lab_monitoring(m: Monitoring) -> Monitoring:
    """Drills take seconds, not minutes (issue 13): short scrape and `for:` durations, quick
    notifications, the fixture's own page as the body marker (the lab serves no Drupal), and
    the email receiver pointed at the lab's mail sink on ops (lab hosts have no route out:
    lab.mail_sink keeps each message, beside the webhook's incident log)."""
    return dataclasses.replace(
        m, scrape_interval_seconds=5, site_down_after_seconds=10, site_slow_after_seconds=30,
        host_down_after_seconds=10, alert_after_seconds=10, group_wait_seconds=1,
        group_interval_seconds=5, body_marker='"site": ?"{site}"', email=mail_sink.email())


def lab_stack(stack: Stack, cfg: LabConfig, machine_public: IPv4Interface,
              site_ips: dict[str, IPv4Address], user_ca_public: str,
              host_ca_public: str) -> Stack:
    """The stack with lab addresses and CAs; raises model.ConfigErrors if that breaks a rule."""
    admin = (IPv4Network(f"{machine_public.ip}/32"),)
    network = dataclasses.replace(stack.network, private_cidr=cfg.private_net,
                                  public_ip_blocks=(cfg.public_net,))
    ssh = dataclasses.replace(stack.ssh, user_ca_public_key=user_ca_public,
                              host_ca_public_key=host_ca_public)
    # The machine is both the admin network and the internet client: a non-indexable stack's
    # allowlist becomes the machine, or nobody could browse the lab's preprod.
    exposure = stack.exposure
    if exposure.allow:
        exposure = dataclasses.replace(exposure, allow=admin)
    sites = tuple(dataclasses.replace(s, public_ip=site_ips[s.name]) for s in stack.sites)
    lab = dataclasses.replace(stack, network=network, admin_networks=admin, ssh=ssh,
                              exposure=exposure, sites=sites,
                              monitoring=lab_monitoring(stack.monitoring))
    r = ErrorList(f"{stack.file} (lab addresses)")
    check_stack(r, lab)
    if r.errors:
        raise ConfigErrors(r.errors)
    return lab
