"""The backup role of a web host: the runner, its configuration, its secrets and its timer.

What `fab deploy` can do from the inventory alone is here (a pure function of the host's
context, for the deploy engine). What needs the CA or another host's secret (signing the
host's backup key, copying the repository password to the storage servers, creating the
repositories) is `fab backup.setup` (tasks.backup_setup), as `fab ca.sign-hosts` is for host
certificates.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.render import render
from engine.resources import (
    Absent,
    Check,
    Directory,
    File,
    Handler,
    Packages,
    Resource,
    Service,
)
from engine.role import Desired, HostContext
from roles.backup import config
from roles.backup.layout import (
    CACHE_DIR,
    CONFIG_DIR,
    LOCAL_REPOS,
    PYTHON,
    RUNNER_DIR,
    STATE_ROOT,
    BackupLayout,
)

PACKAGE_SRC = Path(__file__).resolve().parents[2] / "backup"
OLD_PROBE_OK = f"{STATE_ROOT}/probe-ok"  # left by deploys before checks had exit codes
DAEMON_RELOAD = Handler("backup-daemon-reload", ("systemctl", "daemon-reload"))


def runner_files() -> list[Resource]:
    """The `backup` package (stdlib only) for Debian's python3; web hosts and storage servers."""
    out: list[Resource] = [Directory("/usr/local/lib/hosting", 0o755),
                           Directory(RUNNER_DIR, 0o755), Directory(f"{RUNNER_DIR}/backup", 0o755)]
    for src in sorted(PACKAGE_SRC.glob("*.py")):
        out.append(File(f"{RUNNER_DIR}/backup/{src.name}", src.read_text(), 0o644))
    out += [Directory("/var/lib/hosting", 0o755), Directory(STATE_ROOT, 0o755),
            Absent(OLD_PROBE_OK), Directory("/var/cache/hosting", 0o755),
            Directory(CACHE_DIR, 0o700)]
    return out


def timezone(ctx: HostContext) -> str:
    return ctx.inventory.backup_timezone


def secrets_check(site: str) -> Check:
    argv = ("env", f"PYTHONPATH={RUNNER_DIR}", PYTHON, "-m", "backup.hostsetup", "secrets",
            "--site", site, "--dir", CONFIG_DIR)
    return Check(f"backup-secrets-{site}", (*argv, "--check"), argv,
                 f"{site}: generate the backup password and SSH identity on the host")


def known_hosts(ctx: HostContext) -> str:
    # The storage servers prove themselves with host certificates (no trust on first use).
    return f"@cert-authority backup-a,backup-b,* {ctx.inventory.host_ca_public_key}\n"


def site_resources(ctx: HostContext, site: str) -> tuple[list[Resource], list[Handler]]:
    lay = BackupLayout(site)
    inv = ctx.inventory
    units = (DAEMON_RELOAD.name,)
    resources: list[Resource] = [
        Directory(f"{LOCAL_REPOS}/{site}", 0o700),
        Directory(lay.state, 0o755),
        secrets_check(site),
        File(lay.config, json.dumps(config.runner_config(inv, site), indent=2) + "\n", 0o600),
        File(lay.ssh_config, config.ssh_config(inv, site), 0o600),
        File(f"/etc/systemd/system/{lay.unit}.service",
             render("backup/backup.service.j2", layout=lay, runner_dir=RUNNER_DIR,
                    python=PYTHON), notify=units),
        File(f"/etc/systemd/system/{lay.unit}.timer",
             render("backup/backup.timer.j2", layout=lay, time=inv.site(site).backup_time,
                    timezone=timezone(ctx)), notify=units),
        # Enabled, never started by the deploy: the timer starts the service at backup time.
        Service(f"{lay.unit}.timer", enabled=True, running=True),
    ]
    return resources, []


def backup(ctx: HostContext) -> Desired:
    """Web hosts: back up each site they serve (one in the model)."""
    sites = [s.name for s in ctx.inventory.sites_on(ctx.host.name)]
    if not sites:
        return Desired()
    resources: list[Resource] = [
        # restic 0.18 (Debian 13): --stdin-from-command; ssh reaches A and B.
        Packages(("restic", "openssh-client")),
        *runner_files(),
        Directory(CONFIG_DIR, 0o700),
        Directory(LOCAL_REPOS, 0o700),
        File(BackupLayout(sites[0]).known_hosts, known_hosts(ctx), 0o644),
    ]
    handlers: list[Handler] = [DAEMON_RELOAD]
    for site in sites:
        r, h = site_resources(ctx, site)
        resources += r
        handlers += h
    return Desired(tuple(resources), tuple(handlers))
