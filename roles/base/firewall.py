"""nftables, default deny, rules derived from the inventory per role (R-GDPR-6).

Who may reach what (sources are the inventory's addresses, nothing is typed by hand):
  every host   22 from the bastion's private IP; 9100 (node exporter) from the bastion
  ops          22 from the admin networks only (it is the bastion); 6514 (central logging,
               syslog over mutual TLS, issue 17) from every other host's private IP
  proxy        80/443 on its site IPs (from anywhere, or from `exposure_allow` when the
               environment is not public, e.g. preprod, plus the bastion's site probes)
  web          443 from the proxy's private IP only (R-HOST-1; TLS, client certificate)
  storage      22 from the web hosts (backup transfers, R-BKP-2/7) and the bastion
The file starts with `flush ruleset`: `nft -f` applies it as ONE transaction (atomic, never a
half-open window), after `nft -c -f` validated it on the host.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_network

from engine.inventory import Host, Inventory
from engine.render import render
from engine.resources import File, Handler, Probe, Resource, Service
from engine.role import HostContext
from roles.web.render import INTERNAL_PORT

NFT_CONF = "/etc/nftables.conf"
APPLIED = "/var/lib/hosting/nftables.applied"
LIVE = "nft -s list ruleset"  # -s: no counters, so the listing changes only with the rules
RELOAD = "reload-nftables"
# Applies the file, then records what the kernel holds, so the next run can tell drift
# (a hand-added rule, a flushed ruleset) from a ruleset that is as deployed.
HANDLER = Handler(RELOAD, ("sh", "-c", f"nft -f {NFT_CONF} && mkdir -p /var/lib/hosting && "
                                       f"{LIVE} > {APPLIED}"))
NODE_EXPORTER = 9100
SYSLOG_TLS = 6514  # roles/logging: every host ships its logs to the bastion (issue 17)


@dataclass(frozen=True)
class Rule:
    comment: str
    ports: tuple[int, ...]
    sources: tuple[str, ...] = ()  # empty: any source
    destinations: tuple[str, ...] = ()  # empty: any of the host's addresses
    proto: str = "tcp"

    def nft(self) -> list[str]:
        """nft statements; one per address family when sources or destinations mix them."""
        ports = ", ".join(str(p) for p in sorted(self.ports))
        lines = []
        for fam, key in (("ip", 4), ("ip6", 6)):
            src = [s for s in self.sources if ip_network(s, strict=False).version == key]
            dst = [d for d in self.destinations if ip_network(d, strict=False).version == key]
            if (self.sources and not src) or (self.destinations and not dst):
                continue  # this rule says nothing about this family
            if not self.sources and not self.destinations and fam == "ip6":
                continue  # family-agnostic rule: one line without ip/ip6 matches
            match = []
            if src:
                match.append(f"{fam} saddr {{ {', '.join(src)} }}")
            if dst:
                match.append(f"{fam} daddr {{ {', '.join(dst)} }}")
            match.append(f"{self.proto} dport {{ {ports} }}")
            lines.append(" ".join(match) + " accept")
        return lines


def rules_for(inv: Inventory, host: Host) -> tuple[Rule, ...]:
    bastion = inv.bastion
    rules: list[Rule] = []
    if host.name == bastion.name:
        if not inv.admin_networks:
            # An empty source list means "anyone": never for the bastion's SSH.
            raise ValueError("the inventory has no admin_networks: refusing to open the "
                             "bastion's SSH to everyone")
        rules.append(Rule("SSH to the bastion from the admin networks only (R-GDPR-5/6)",
                          (22,), inv.admin_networks))
        others = tuple(h.private_ip for h in inv.hosts if h.name != bastion.name)
        if others:  # the bastion's own rsyslog reaches its listener over the loopback
            rules.append(Rule("central logging, syslog over mutual TLS, from the platform's "
                              "hosts (issue 17)", (SYSLOG_TLS,), others))
    else:
        rules.append(Rule("SSH only through the bastion", (22,), (bastion.private_ip,)))
    if host.role == "storage":
        webs = tuple(h.private_ip for h in inv.by_role("web"))
        if webs:
            rules.append(Rule("backup transfers over SSH from the web hosts (R-BKP-2, R-BKP-7)",
                              (22,), webs))
    if host.role == "proxy" and host.site_ips:
        rules.append(Rule("HTTP(S) of the sites, on their own public IPs (R-HOST-1, R-HOST-2)",
                          (80, 443), inv.exposure_allow, host.site_ips))
        if inv.exposure_allow and bastion.public_ip:
            # Not public (preprod): the blackbox probes on ops must still reach the sites.
            rules.append(Rule("site probes from the monitoring on the bastion (R-HOST-4)",
                              (80, 443), (bastion.public_ip,), host.site_ips))
    if host.role == "web":
        proxies = tuple(h.private_ip for h in inv.by_role("proxy"))
        # HTTPS with the proxy's client certificate (issue 19 item 6): only the proxy's
        # address, and nginx also refuses a client without a certificate of the internal CA.
        rules.append(Rule("HTTPS from the reverse proxy only (R-HOST-1)",
                          (INTERNAL_PORT,), proxies))
    if host.name != bastion.name:
        rules.append(Rule("node exporter, scraped by the bastion only (R-HOST-4)",
                          (NODE_EXPORTER,), (bastion.private_ip,)))
    return tuple(rules)


def ruleset(ctx: HostContext) -> str:
    return render("base/nftables.conf.j2", host=ctx.host,
                  rules=rules_for(ctx.inventory, ctx.host))


def resources(ctx: HostContext) -> list[Resource]:
    return [
        File(NFT_CONF, ruleset(ctx), 0o755, validate="/usr/sbin/nft -c -f {}", notify=(RELOAD,)),
        Probe("nftables-live", ("sh", "-c", LIVE), APPLIED, notify=(RELOAD,),
              summary="nftables: the live ruleset is not the deployed one (drift, or never "
                      "applied by deploy): re-apply /etc/nftables.conf"),
        # Loads /etc/nftables.conf at boot.
        Service("nftables.service", enabled=True, running=True),
    ]
