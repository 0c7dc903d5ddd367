"""debsums and AIDE's findings as metrics, on every host (issue 17, docs/hardening.md).

The hosts have no mail transport: what debsums' and AIDE's cron jobs would mail goes to
monitoring instead. onhost/metrics/integrity.py (shipped with the update check by
roles/monitoring/updates.py, which copies every module of onhost/metrics/) runs daily in a
sandboxed unit; debsums runs at the period CRON_CHECK sets in /etc/default/debsums (weekly,
written here: lynis PKGS-7370), AIDE's daily report (roles/base/hardening.py) is read each day.
IntegrityChanged (templates/monitoring/rules.yml.j2) alerts on a changed packaged file.
"""
from __future__ import annotations

from engine.render import render
from engine.resources import Directory, File, Handler, Resource, Service
from engine.role import Desired, HostContext
from roles.monitoring.updates import CODE_DIR, PYTHON, TEXTFILE_DIR

STATE_DIR = "/var/lib/hosting/integrity"
UNIT = "hosting-integrity"
DEBSUMS_DEFAULT = "/etc/default/debsums"
DEBSUMS_PERIOD = "weekly"

HANDLERS: tuple[Handler, ...] = (
    Handler("integrity-daemon-reload", ("systemctl", "daemon-reload")),
    # A first check now (in the background, at the lowest priority), not tomorrow.
    Handler("integrity-run-now", ("systemctl", "start", "--no-block", f"{UNIT}.service")),
)
_NOTIFY = tuple(h.name for h in HANDLERS)


def resources(ctx: HostContext) -> list[Resource]:
    del ctx  # the same on every host
    return [
        File(DEBSUMS_DEFAULT,
             "# Managed by `fab deploy` (roles/monitoring/integrity.py). Read by "
             f"{UNIT}.service\n# (onhost/metrics/integrity.py): debsums -cs at this period, "
             "its findings as metrics.\n"
             f"CRON_CHECK={DEBSUMS_PERIOD}\n", 0o644),
        Directory(STATE_DIR, 0o755),
        File(f"/etc/systemd/system/{UNIT}.service",
             render("monitoring/integrity.service.j2", python=PYTHON, code_dir=CODE_DIR,
                    state_dir=STATE_DIR, textfile_dir=TEXTFILE_DIR), 0o644, notify=_NOTIFY),
        File(f"/etc/systemd/system/{UNIT}.timer", render("monitoring/integrity.timer.j2"),
             0o644, notify=_NOTIFY),
        Service(f"{UNIT}.timer", enabled=True, running=True),
    ]


def integrity(ctx: HostContext) -> Desired:
    """Every host (roles/registry.py)."""
    return Desired(tuple(resources(ctx)), HANDLERS)
