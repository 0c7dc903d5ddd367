"""Pending Debian security updates as metrics, on every host (issue 13, R-INC-2, R-HOST-4).

onhost/metrics/ (stdlib only: apt_security.py and its textfile.py) goes to CODE_DIR; a
sandboxed oneshot unit counts the security upgrades `apt-get --simulate` would install and
writes hosting_apt_security_updates_pending and ..._pending_since_timestamp_seconds into node
exporter's textfile directory; an hourly timer runs it (and a deploy that changes it, once).
SecurityUpdatesPending (templates/monitoring/) alerts when some stay pending for days:
unattended-upgrades (roles/base) should have installed them.
"""
from __future__ import annotations

from pathlib import Path

from engine.render import render
from engine.resources import Directory, File, Handler, Resource, Service
from engine.role import Desired, HostContext

SOURCE = Path(__file__).resolve().parents[2] / "onhost" / "metrics"
CODE_DIR = "/usr/local/lib/hosting/metrics"
STATE_DIR = "/var/lib/hosting/updates"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # Debian's, made by the node exporter package
UNIT = "hosting-apt-security"
PYTHON = "/usr/bin/python3"

HANDLERS: tuple[Handler, ...] = (
    Handler("updates-daemon-reload", ("systemctl", "daemon-reload")),
    # A first count now, not within the hour (--no-block: the deploy does not wait for apt).
    Handler("updates-run-now", ("systemctl", "start", "--no-block", f"{UNIT}.service")),
)
_NOTIFY = tuple(h.name for h in HANDLERS)


def resources(ctx: HostContext) -> list[Resource]:
    del ctx  # the same on every host
    # Only this role's own directories: their parents (/usr/local/lib/hosting, /var/lib/hosting)
    # are made by the agent when missing and declared by other roles (the backup runner's);
    # node exporter's textfile directory is the node_exporter role's (a resource is declared
    # once per host).
    out: list[Resource] = [Directory(CODE_DIR, 0o755)]
    for src in sorted(SOURCE.glob("*.py")):
        out.append(File(f"{CODE_DIR}/{src.name}", src.read_text(), 0o644, notify=_NOTIFY))
    out += [
        Directory(STATE_DIR, 0o755),
        File(f"/etc/systemd/system/{UNIT}.service",
             render("monitoring/updates.service.j2", python=PYTHON, code_dir=CODE_DIR,
                    state_dir=STATE_DIR, textfile_dir=TEXTFILE_DIR), 0o644, notify=_NOTIFY),
        File(f"/etc/systemd/system/{UNIT}.timer", render("monitoring/updates.timer.j2"), 0o644,
             notify=_NOTIFY),
        Service(f"{UNIT}.timer", enabled=True, running=True),
    ]
    return out


def updates(ctx: HostContext) -> Desired:
    """Every host (roles/registry.py)."""
    return Desired(tuple(resources(ctx)), HANDLERS)
