"""Pending Debian security updates, as textfile metrics (issue 13, R-INC-2, R-HOST-4).

    python3 /usr/local/lib/hosting/metrics/apt_security.py [--state DIR]

Run hourly by a systemd timer on every host (roles/monitoring/updates.py), after apt's daily
update of the package lists. Read-only: `apt-get --simulate dist-upgrade` (no lock, no cache
written) lists what would be installed; an upgrade whose origin is Debian's security suite
(`Debian-Security:13/stable-security`, `trixie-security`) counts. Writes
hosting_apt_security_updates_pending (packages) and, while it is above 0,
hosting_apt_security_updates_pending_since_timestamp_seconds (when it became so, kept in
DIR/security-pending.json). Unattended-upgrades installs them daily; an alert fires when
some stay pending for days (SecurityUpdatesPending). The last unattended-upgrades run's start
and result (an ERROR in its log) are metrics too: a failed update. So is a reboot an update
waits for (/run/reboot-required): RebootRequired when it is overdue.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import textfile  # noqa: E402

STATE_DIR = "/var/lib/hosting/updates"
STATE_FILE = "security-pending.json"
PROM = "hosting_apt.prom"
APT = ["apt-get", "--simulate", "--quiet", "-o", "Debug::NoLocking=1",
       "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=", "dist-upgrade"]
# "Inst openssl [3.5.1-1] (3.5.1-1+deb13u1 Debian-Security:13/stable-security [amd64])"
INST = re.compile(r"^Inst (\S+)(?: \[[^\]]*\])? \(([^)]*)\)")
SECURITY = re.compile(r"(?:^|[\s,/:])[A-Za-z0-9.-]*-security\b|Debian-Security:")


def security_upgrades(simulation):
    """The packages of `apt-get --simulate` output whose new version comes from a security
    suite (sorted, each once)."""
    found = set()
    for line in simulation.splitlines():
        m = INST.match(line)
        if m and SECURITY.search(m.group(2)):
            found.add(m.group(1))
    return sorted(found)


def load_state(state_dir):
    """The last good check: {"count": n, "since": t or None}."""
    try:
        with open(os.path.join(state_dir, STATE_FILE)) as f:
            data = json.load(f)
        return {"count": int(data["count"]), "since": data.get("since")}
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return {"count": 0, "since": None}


def next_state(previous, count, now):
    """Since when security updates are pending: kept while the count stays above 0."""
    if count == 0:
        return {"count": 0, "since": None}
    return {"count": count, "since": previous.get("since") or round(now)}


def save_state(state_dir, state):
    os.makedirs(state_dir, mode=0o755, exist_ok=True)
    path = os.path.join(state_dir, STATE_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.write("\n")
    os.replace(tmp, path)


UU_LOG = "/var/log/unattended-upgrades/unattended-upgrades.log"
UU_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,\d+)? (\w+) (.*)$")


def last_unattended_run(text):
    """(start time, ok) of the last unattended-upgrades run in its log, or None: a run is
    from its "Starting unattended upgrades script" line on; an ERROR line fails it."""
    start, ok = None, True
    for line in text.splitlines():
        m = UU_LINE.match(line)
        if not m:
            continue
        if m.group(3).startswith("Starting unattended upgrades script"):
            start, ok = m.group(1), True
        elif start and m.group(2) in ("ERROR", "CRITICAL"):
            ok = False
    if start is None:
        return None
    moment = datetime.strptime(start, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return moment.timestamp(), ok


def unattended_metrics(path=UU_LOG):
    """The last unattended-upgrades run (R-INC-2): a failed update alerts, and the alert is
    in the incident record."""
    try:
        with open(path, errors="replace") as f:
            run = last_unattended_run(f.read())
    except OSError:
        run = None
    if run is None:
        return []
    return [("hosting_apt_unattended_upgrades_last_run_timestamp_seconds",
             "When unattended-upgrades last started (Unix seconds, the host runs in UTC).",
             [({}, run[0])]),
            ("hosting_apt_unattended_upgrades_last_run_success",
             "1 if the last unattended-upgrades run logged no error, else 0.",
             [({}, 1 if run[1] else 0)])]


REBOOT_FLAG = "/run/reboot-required"  # left by a kernel, libc or systemd update (Debian)
REBOOT_PKGS = "/run/reboot-required.pkgs"


def reboot_metrics(flag=REBOOT_FLAG, pkgs=REBOOT_PKGS):
    """Whether an update waits for a reboot, since when (the flag file's time) and for how many
    packages: the reboot policy (docs/hardening.md) is a planned reboot within a week, and
    RebootRequired alerts when it is overdue."""
    try:
        since = os.stat(flag).st_mtime
    except FileNotFoundError:
        return [("hosting_reboot_required", "1 if an installed update needs a reboot.",
                 [({}, 0)])]
    except OSError:
        return []  # unreadable: no figure rather than a wrong one
    try:
        with open(pkgs, errors="replace") as f:
            count = len({line.strip() for line in f if line.strip()})
    except OSError:
        count = 0
    return [("hosting_reboot_required", "1 if an installed update needs a reboot.", [({}, 1)]),
            ("hosting_reboot_required_since_timestamp_seconds",
             "When the pending reboot became needed (Unix seconds).", [({}, since)]),
            ("hosting_reboot_required_packages",
             "Packages whose update waits for the reboot.", [({}, count)])]


def metrics(count, since, ok):
    out = [("hosting_apt_security_updates_pending",
            "Debian security updates waiting to be installed (packages).", [({}, count)]),
           ("hosting_apt_check_success", "1 if the last check of pending updates worked.",
            [({}, 1 if ok else 0)]),
           ("hosting_apt_check_timestamp_seconds", "When updates were last checked.",
            [({}, time.time())])]
    if since is not None:
        out.insert(1, ("hosting_apt_security_updates_pending_since_timestamp_seconds",
                       "When security updates became pending (Unix seconds).",
                       [({}, since)]))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="apt_security.py")
    p.add_argument("--state", default=STATE_DIR)
    a = p.parse_args(argv)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
    try:
        proc = subprocess.run(APT, capture_output=True, text=True, timeout=600, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc, error = None, str(exc)
    previous = load_state(a.state)
    if proc is None or proc.returncode != 0:
        error = error if proc is None else (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"apt_security: apt-get --simulate failed: {error}", file=sys.stderr)
        # The last good check's figures stay; the check's own result says it failed.
        warning = textfile.write_safely(PROM, metrics(previous["count"], previous["since"],
                                                      False) + unattended_metrics()
                                        + reboot_metrics())
        if warning:
            print(f"apt_security: {warning}", file=sys.stderr)
        return 1
    packages = security_upgrades(proc.stdout)
    state = next_state(previous, len(packages), time.time())
    save_state(a.state, state)
    warning = textfile.write_safely(PROM, metrics(state["count"], state["since"], True)
                                    + unattended_metrics() + reboot_metrics())
    print(f"apt_security: {len(packages)} security update(s) pending"
          + (f": {' '.join(packages)}" if packages else ""))
    if warning:
        print(f"apt_security: {warning}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
