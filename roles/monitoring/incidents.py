"""The incident record on the ops host (R-INC-4; docs/monitoring.md, "Incident record").

The monitoring role of ops includes this:

    from roles.monitoring import incidents
    resources += incidents.resources(ctx); handlers += incidents.HANDLERS

It installs the receiver (onhost/incidents/receiver.py, stdlib only) and runs it as an
unprivileged user on 127.0.0.1:9099 (Alertmanager's webhook: WEBHOOK_URL), appending one JSON
line per alert notification to LOG; logrotate keeps KEEP_MONTHS monthly files. The admin's
tasks append their records through the same code over SSH (tasks/incident_record.py).
"""
from __future__ import annotations

from pathlib import Path

from engine.render import render
from engine.resources import Directory, File, Handler, Packages, Resource, Service, User
from engine.role import HostContext

SOURCE = Path(__file__).resolve().parents[2] / "onhost" / "incidents"
USER = "hosting-incidents"
HOME = "/var/lib/hosting-incidents"  # its parent exists before useradd makes it
CODE_DIR = "/usr/local/lib/hosting/incidents"
RECEIVER = f"{CODE_DIR}/receiver.py"
LOG_DIR = "/var/log/hosting/incidents"
LOG = f"{LOG_DIR}/incidents.jsonl"
# The update log (`fab update`, issue 15): one line per update run, failed or not; a failed
# one also goes to LOG. Same directory, same append code, same allow-list.
UPDATE_LOG = f"{LOG_DIR}/updates.jsonl"
LISTEN = "127.0.0.1:9099"
WEBHOOK_URL = f"http://{LISTEN}/alertmanager"  # for Alertmanager's webhook_configs
UNIT = "hosting-incidents.service"
KEEP_MONTHS = 24  # >= 1 year (R-INC-4): two years of monthly files
PYTHON = "/usr/bin/python3"

HANDLERS: tuple[Handler, ...] = (
    Handler("incidents-daemon-reload", ("systemctl", "daemon-reload")),
    Handler("incidents-restart", ("systemctl", "restart", UNIT)),
)
_NOTIFY = tuple(h.name for h in HANDLERS)


def resources(ctx: HostContext) -> list[Resource]:
    """The receiver, its user, log directory, unit and log rotation (ops only)."""
    del ctx  # the same on every ops host: nothing to read from the inventory
    out: list[Resource] = [
        Packages(("python3", "logrotate")),
        User(USER, HOME),
        Directory(HOME, 0o750, USER, USER),
        # Parents (/usr/local/lib/hosting, /var/log/hosting) are made by the agent when
        # missing; other roles may declare them (a resource is declared once per host).
        Directory(CODE_DIR, 0o755),
    ]
    for src in sorted(SOURCE.glob("*.py")):
        out.append(File(f"{CODE_DIR}/{src.name}", src.read_text(), 0o644,
                        notify=("incidents-restart",)))
    out += [
        # Only the service's user writes the record; the tasks append through it as root.
        Directory(LOG_DIR, 0o750, USER, USER),
        File("/etc/logrotate.d/hosting-incidents",
             render("monitoring/incidents.logrotate.j2", log=LOG, user=USER,
                    keep_months=KEEP_MONTHS), 0o644),
        File(f"/etc/systemd/system/{UNIT}",
             render("monitoring/incidents.service.j2", user=USER, code_dir=CODE_DIR, log=LOG,
                    log_dir=LOG_DIR, listen=LISTEN, python=PYTHON), 0o644, notify=_NOTIFY),
        Service(UNIT, enabled=True, running=True),
    ]
    return out


def append_argv(log: str = LOG) -> list[str]:
    """The command that appends one record (JSON on stdin) to the log, run as root on ops."""
    return [PYTHON, "-I", RECEIVER, "append", "--log", log]


def show_argv(log: str = LOG) -> list[str]:
    return [PYTHON, "-I", RECEIVER, "show", "--log", log]
