"""Which roles converge a host, by its inventory role. Every host gets the baseline; then the
proxy, the web tier with the site's backup runner (R-BKP-1), the storage servers' repositories
and rotation (R-BKP-2, R-BKP-3); the node exporter everywhere and the monitoring, alerting and
incident record on ops (R-HOST-4, R-INC-4); with an enabled `acme` section, certbot on ops and
the proxy's certificate installer (issue 14, R-SCOPE-2); the central logging everywhere, every
host shipping its journal to ops over mutual TLS, and the check of installed files (debsums,
AIDE) as metrics (issue 17, roles/logging, roles/monitoring/integrity.py). What needs the CA
or another host's secret (backup certificates, passwords on A/B, repositories) stays in
`fab backup.setup`."""
from __future__ import annotations

from engine.role import Desired, HostContext, Role
from roles.acme.role import acme_ops, acme_proxy
from roles.backup.role import backup
from roles.base import baseline
from roles.logging.role import central_logging
from roles.monitoring.integrity import integrity
from roles.monitoring.role import node_exporter, ops_monitoring
from roles.monitoring.updates import updates
from roles.proxy.role import proxy
from roles.storage.role import storage
from roles.web.role import web

ROLES: dict[str, tuple[Role, ...]] = {
    "proxy": (baseline, central_logging, node_exporter, updates, integrity, proxy, acme_proxy),
    "web": (baseline, central_logging, node_exporter, updates, integrity, web, backup),
    "ops": (baseline, central_logging, node_exporter, updates, integrity, ops_monitoring, acme_ops),
    "storage": (baseline, central_logging, node_exporter, updates, integrity, storage),
}


def desired(ctx: HostContext) -> Desired:
    total = Desired()
    for role in ROLES[ctx.host.role]:
        total = total + role(ctx)
    return total
