"""The monitoring configuration files, rendered from the inventory (pure functions: the role
and the unit tests, which run promtool/amtool/blackbox on them, use the same)."""
from __future__ import annotations

from dataclasses import dataclass

from engine.inventory import Inventory
from engine.render import render
from model.types import Monitoring
from roles.monitoring import config as c
from roles.monitoring import incidents

RULES_PATH = "/etc/prometheus/rules/hosting.yml"
# File systems that are not disks: never DiskAlmostFull / DiskWillFillIn24h.
PSEUDO_FS = "tmpfs|devtmpfs|overlay|squashfs|ramfs|nsfs|fuse.lxcfs|autofs"
PSEUDO_FS_LAB = "devtmpfs|overlay|squashfs|ramfs|nsfs|fuse.lxcfs|autofs"


@dataclass(frozen=True)
class SiteProbe:
    site: str
    check: str  # https | https-any | redirect
    module: str
    url: str


@dataclass(frozen=True)
class SiteView:
    name: str
    domain: str
    public_ip: str
    marker: str  # YAML single-quoted


def sites(inv: Inventory, m: Monitoring) -> list[SiteView]:
    out = []
    for s in inv.doc.get("sites", ()):
        marker = m.body_marker.replace("{site}", s["name"]).replace("'", "''")
        out.append(SiteView(s["name"], s["domain"], s["public_ip"], marker))
    return out


def site_probes(inv: Inventory, m: Monitoring) -> list[SiteProbe]:
    probes = []
    for s in sites(inv, m):
        https = f"https://{s.public_ip}{m.probe_path}"
        probes += [SiteProbe(s.name, "https", f"https_{s.name}", https),
                   SiteProbe(s.name, "https-any", f"https_any_{s.name}", https),
                   SiteProbe(s.name, "redirect", f"redirect_{s.name}",
                             f"http://{s.public_ip}{m.probe_path}")]
    return probes


def prometheus_yml(inv: Inventory, m: Monitoring) -> str:
    return render("monitoring/prometheus.yml.j2", m=m, environment=inv.environment,
                  scrape_timeout=min(10, m.scrape_interval_seconds),
                  rules_path=RULES_PATH, alertmanager=c.ALERTMANAGER, prometheus=c.PROMETHEUS,
                  blackbox=c.BLACKBOX, bastion=inv.bastion.name, hosts=inv.hosts,
                  node_port=c.NODE_EXPORTER_PORT, site_probes=site_probes(inv, m))


def rules_yml(m: Monitoring, lab: bool = False) -> str:
    # In the lab a small tmpfs stands for a disk (no loop mounts in a container): its file
    # systems count there, never on real hosts (/run, /dev/shm).
    return render("monitoring/rules.yml.j2", m=m, slow_seconds=m.site_slow_ms / 1000,
                  pseudo_fs=PSEUDO_FS_LAB if lab else PSEUDO_FS)


def alertmanager_yml(m: Monitoring) -> str:
    email = None
    if m.email:
        email = {"to": m.email.to, "from": m.email.sender, "smarthost": m.email.smarthost,
                 "username": m.email.username, "require_tls": m.email.require_tls}
    return render("monitoring/alertmanager.yml.j2", m=m, email=email,
                  webhook_url=incidents.WEBHOOK_URL, smtp_password_file=c.SMTP_PASSWORD_FILE)


def blackbox_yml(inv: Inventory, m: Monitoring, ca_file: str | None) -> str:
    return render("monitoring/blackbox.yml.j2", sites=sites(inv, m), ca_file=ca_file,
                  timeout=max(1, min(10, m.scrape_interval_seconds - 1)))


def inventory_textfile(inv: Inventory) -> str:
    """The hosts Prometheus must scrape and the sites that must report backups, as
    node-exporter textfile metrics on ops: TargetMissing fires for a host in this list without
    an `up{job="node"}` series, BackupNeverReported for a site without a runner metric."""
    lines = ["# HELP hosting_inventory_host A host of the inventory (roles/monitoring).",
             "# TYPE hosting_inventory_host gauge"]
    lines += [f'hosting_inventory_host{{inventory_host="{h.name}",inventory_role="{h.role}"}} 1'
              for h in inv.hosts]
    # BackupNeverReported: a site of this list whose runner never wrote a metric.
    lines += ["# HELP hosting_inventory_site A site of the inventory (roles/monitoring).",
              "# TYPE hosting_inventory_site gauge"]
    lines += [f'hosting_inventory_site{{inventory_site="{s["name"]}"}} 1'
              for s in inv.doc.get("sites", ())]
    return "\n".join(lines) + "\n"


def prometheus_args(m: Monitoring) -> str:
    return (f'ARGS="--web.listen-address={c.PROMETHEUS} '
            f'--storage.tsdb.retention.time={m.retention_days}d '
            f'--storage.tsdb.retention.size={m.retention_size_gb}GB"\n')


def alertmanager_args() -> str:
    # --cluster.listen-address= : no gossip port (it would listen on every address).
    return (f'ARGS="--web.listen-address={c.ALERTMANAGER} --cluster.listen-address= '
            '--config.file=/etc/prometheus/alertmanager.yml"\n')


def blackbox_args() -> str:
    return (f'ARGS="--web.listen-address={c.BLACKBOX} '
            '--config.file=/etc/prometheus/blackbox.yml"\n')


def node_exporter_args(private_ip: str) -> str:
    return (f'ARGS="--web.listen-address={private_ip}:{c.NODE_EXPORTER_PORT} '
            f'--collector.systemd --collector.textfile.directory={c.TEXTFILE_DIR}"\n')
