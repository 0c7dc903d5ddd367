"""The monitoring roles (issue 13, R-HOST-4).

`node_exporter` (every host): prometheus-node-exporter bound to the host's private address,
systemd unit states and the textfile collector (the backup runner's and apt's metrics) on;
nftables lets only ops' private address reach it (roles/base/firewall.py).

`ops_monitoring` (ops): Prometheus (127.0.0.1:9090, retention from the model), Alertmanager
(127.0.0.1:9093, no cluster port), the blackbox exporter (127.0.0.1:9115), every config
validated on the host by its own tool before it replaces the live one (promtool, amtool,
blackbox --config.check), and the incident receiver (roles/monitoring/incidents.py) that
Alertmanager's webhook feeds. Nothing listens on a public address: nmap still sees only 22.
"""
from __future__ import annotations

from engine.resources import Directory, File, Handler, Packages, Service
from engine.role import Desired, HostContext
from roles import decommissioned
from roles.monitoring import config as c
from roles.monitoring import incidents
from roles.monitoring import render as r

BLACKBOX_CA = "/etc/prometheus/blackbox-ca.pem"

NODE_HANDLERS = (
    Handler("restart-node-exporter",
            ("systemctl", "restart", "prometheus-node-exporter.service")),
)


def _reload(unit: str, address: str) -> tuple[str, ...]:
    """Reload once the daemon answers /-/ready: a reload (SIGHUP, sent by the unit's own user)
    right after a start or restart reaches a process not yet set up for it and fails (seen in
    the lab on a first deploy: `kill: Operation not permitted`)."""
    return ("sh", "-c", f"for i in $(seq 60); do curl -fsS -o /dev/null "
                        f"http://{address}/-/ready && break; sleep 0.5; done; "
                        f"systemctl reload {unit}")


OPS_HANDLERS = (
    Handler("restart-prometheus", ("systemctl", "restart", "prometheus.service")),
    Handler("reload-prometheus", _reload("prometheus.service", c.PROMETHEUS)),
    Handler("restart-alertmanager", ("systemctl", "restart", "prometheus-alertmanager.service")),
    Handler("reload-alertmanager", _reload("prometheus-alertmanager.service", c.ALERTMANAGER)),
    Handler("restart-blackbox",
            ("systemctl", "restart", "prometheus-blackbox-exporter.service")),
)


def node_exporter(ctx: HostContext) -> Desired:
    return Desired(
        resources=(
            Packages(("prometheus-node-exporter",)),
            Directory(c.TEXTFILE_DIR, 0o755),
            File("/etc/default/prometheus-node-exporter",
                 r.node_exporter_args(ctx.host.private_ip),
                 notify=("restart-node-exporter",)),
            Service("prometheus-node-exporter.service"),
        ),
        handlers=NODE_HANDLERS,
    )


def _client_ca(ctx: HostContext) -> bytes | None:
    """A private CA the sites' certificate chains to (the lab's), for the blackbox's checks;
    None on OVH (a public CA: the system's trust store)."""
    path = getattr(ctx.inventory, "tls_client_ca", None)
    return path.read_bytes() if path is not None else None


def ops_monitoring(ctx: HostContext) -> Desired:
    inv = ctx.inventory
    m = c.monitoring(inv)
    lab = inv.source == "lab"
    ca = _client_ca(ctx)
    resources = [
        # First: no monitoring targets for a site decommissioned here (roles/decommissioned.py).
        *(decommissioned.guard(s.name) for s in inv.sites),
        # curl: `fab monitor.status` and the tests query the loopback APIs through SSH with it.
        Packages(("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter",
                  "curl")),
        Directory("/etc/prometheus/rules", 0o755),
        File(r.RULES_PATH, r.rules_yml(m, lab), validate="promtool check rules {}",
             notify=("reload-prometheus",)),
        File("/etc/prometheus/prometheus.yml", r.prometheus_yml(inv, m),
             validate="promtool check config {}", notify=("reload-prometheus",)),
        File("/etc/default/prometheus", r.prometheus_args(m), notify=("restart-prometheus",)),
        File("/etc/prometheus/alertmanager.yml", r.alertmanager_yml(m), 0o640,
             group="prometheus", validate="amtool check-config {}",
             notify=("reload-alertmanager",)),
        File("/etc/default/prometheus-alertmanager", r.alertmanager_args(),
             notify=("restart-alertmanager",)),
    ]
    if ca is not None:
        resources.append(File(BLACKBOX_CA, ca, notify=("restart-blackbox",)))
    resources += [
        File("/etc/prometheus/blackbox.yml",
             r.blackbox_yml(inv, m, BLACKBOX_CA if ca is not None else None),
             validate="prometheus-blackbox-exporter --config.check --config.file={}",
             notify=("restart-blackbox",)),
        File("/etc/default/prometheus-blackbox-exporter", r.blackbox_args(),
             notify=("restart-blackbox",)),
        File(f"{c.TEXTFILE_DIR}/hosting_inventory.prom", r.inventory_textfile(inv)),
        *incidents.resources(ctx),
        Service("prometheus.service"),
        Service("prometheus-alertmanager.service"),
        Service("prometheus-blackbox-exporter.service"),
    ]
    return Desired(resources=tuple(resources), handlers=OPS_HANDLERS + incidents.HANDLERS)
