"""The integrity of the installed files, as textfile metrics (issue 17, docs/hardening.md).

    python3 /usr/local/lib/hosting/metrics/integrity.py [--state DIR]

Run daily by hosting-integrity.timer on every host (roles/monitoring/integrity.py). The hosts
have no mail transport, so what debsums' and AIDE's own cron jobs would mail is turned into
metrics that Prometheus on ops reads, and printed (the unit's journal):

- debsums -cs: every packaged file against its package's checksum (conffiles are the roles'
  business), at the period `CRON_CHECK` sets in /etc/default/debsums (daily, weekly, monthly;
  never: off), the lines of /etc/debsums-ignore left out as Debian's cron job does. Changed and
  missing files are counted in hosting_integrity_changed_files{tool="debsums"}: nothing but a
  package may change them, so IntegrityChanged alerts.
- AIDE's last report (/var/log/aide/aide.log, written by Debian's dailyaidecheck.timer): its
  added, removed and changed entries, in hosting_integrity_changed_files{tool="aide"}. No
  alert: every update changes files; the report says which.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import textfile  # noqa: E402

STATE_DIR = "/var/lib/hosting/integrity"
STATE_FILE = "debsums.json"
PROM = "hosting_integrity.prom"
DEBSUMS_DEFAULT = "/etc/default/debsums"
DEBSUMS_IGNORE = "/etc/debsums-ignore"
AIDE_LOG = "/var/log/aide/aide.log"
PERIODS = {"daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400}
# Runs a little before the period is over: the timer's own jitter must not skip a turn.
SLACK_S = 3 * 3600


def debsums_period(text):
    """Seconds between two debsums runs from /etc/default/debsums' CRON_CHECK, None if off."""
    value = None
    for line in text.splitlines():
        m = re.match(r"\s*CRON_CHECK=[\"']?(\w+)[\"']?\s*(?:#.*)?$", line)
        if m:
            value = m.group(1)
    return PERIODS.get(value or "never")


def debsums_findings(stdout, stderr, ignore=()):
    """The changed files (stdout of `debsums -cs`) and missing ones ("debsums: missing file
    X (from P package)" on stderr), minus the paths matching an ignore pattern."""
    found = [line.strip() for line in stdout.splitlines() if line.strip()]
    for line in stderr.splitlines():
        m = re.match(r"debsums: missing file (\S+)", line)
        if m:
            found.append(m.group(1))
    patterns = [re.compile(p) for p in ignore]
    return sorted({f for f in found if not any(p.search(f) for p in patterns)})


def aide_report(text):
    """(added, removed, changed) of the last AIDE run in its log, or None without one."""
    starts = [m.start() for m in re.finditer(r"^Start timestamp:", text, re.M)]
    if not starts:
        return None
    last = text[starts[-1]:]
    if re.search(r"found NO differences", last):
        return 0, 0, 0
    counts = []
    for what in ("Added", "Removed", "Changed"):
        m = re.search(rf"^\s*{what} entries:\s*(\d+)", last, re.M)
        if not m:
            return None  # an unfinished or unknown report: no figure rather than a wrong one
        counts.append(int(m.group(1)))
    return tuple(counts)


def load_state(state_dir):
    try:
        with open(os.path.join(state_dir, STATE_FILE)) as f:
            data = json.load(f)
        return {"at": float(data["at"]), "files": list(data["files"]), "ok": bool(data["ok"])}
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def save_state(state_dir, state):
    os.makedirs(state_dir, mode=0o755, exist_ok=True)
    path = os.path.join(state_dir, STATE_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
        f.write("\n")
    os.replace(path + ".tmp", path)


def debsums_due(previous, period, now):
    """A first run, a run after the period, or again the next day after a failed run."""
    return period is not None and (previous is None or not previous["ok"]
                                   or now - previous["at"] >= period - SLACK_S)


def run_debsums(ignore):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
    try:
        proc = subprocess.run(["debsums", "-cs"], capture_output=True, text=True,
                              timeout=3600, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"integrity: debsums did not run: {exc}", file=sys.stderr)
        return None
    # 0: all good; 1: missing files or other errors; 2: changed files (both may be set).
    if proc.returncode not in (0, 1, 2, 3):
        print(f"integrity: debsums failed ({proc.returncode}): {proc.stderr.strip()}",
              file=sys.stderr)
        return None
    return debsums_findings(proc.stdout, proc.stderr, ignore)


def metrics(debsums, aide):
    changed, last, ok = [], [], []
    if debsums is not None:
        changed.append(({"tool": "debsums"}, len(debsums["files"])))
        last.append(({"tool": "debsums"}, debsums["at"]))
        ok.append(({"tool": "debsums"}, 1 if debsums["ok"] else 0))
    if aide is not None:
        changed.append(({"tool": "aide"}, sum(aide)))
    return [("hosting_integrity_changed_files",
             "Installed files changed, added or missing by the tool's last check.", changed),
            ("hosting_integrity_last_check_timestamp_seconds",
             "When the tool last checked (Unix seconds).", last),
            ("hosting_integrity_check_success", "1 if the tool's last check ran.", ok)]


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def main(argv=None):
    p = argparse.ArgumentParser(prog="integrity.py")
    p.add_argument("--state", default=STATE_DIR)
    a = p.parse_args(argv)
    now = time.time()
    state = load_state(a.state)
    period = debsums_period(read(DEBSUMS_DEFAULT))
    if debsums_due(state, period, now):
        ignore = [line.strip() for line in read(DEBSUMS_IGNORE).splitlines() if line.strip()]
        files = run_debsums(ignore)
        state = {"at": now, "files": files or [], "ok": files is not None}
        save_state(a.state, state)
        for f in state["files"]:
            print(f"integrity: debsums: changed or missing: {f}")
        print(f"integrity: debsums: {len(state['files'])} packaged file(s) changed or missing"
              if state["ok"] else "integrity: debsums: the check did not run")
    aide = aide_report(read(AIDE_LOG))
    if aide is not None:
        print(f"integrity: AIDE's last report: {aide[0]} added, {aide[1]} removed, "
              f"{aide[2]} changed")
    warning = textfile.write_safely(PROM, metrics(state if period else None, aide))
    if warning:
        print(f"integrity: {warning}", file=sys.stderr)
        return 1
    return 0 if state is None or state["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
