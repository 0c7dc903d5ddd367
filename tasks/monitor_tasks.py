"""`fab monitor.*`: the monitoring on ops from the admin's machine (issue 13, R-HOST-4,
docs/monitoring.md), always through the verified SSH connection to ops: Prometheus and
Alertmanager listen on ops' loopback only and are never exposed.

  fab monitor.status [--env ENV] [--json]   targets down and alerts firing (exit 1 if any)
  fab monitor.smtp-password [--env ENV]     the email receiver's SMTP password, read from the
                                            terminal (or stdin), written to a file on ops
"""
from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from engine.access import AccessError
from engine.channel import run_on
from engine.inventory import Inventory, InventoryError
from roles.monitoring import config as c
from tasks.web_tasks import connected

ENV_HELP = "lab | prod | preprod (default lab)"
TIMEOUT = 30


class MonitorError(RuntimeError):
    pass


def api_argv(base: str, path: str) -> list[str]:
    """curl on ops against a loopback API (Prometheus 9090, Alertmanager 9093)."""
    return ["curl", "-fsS", "--max-time", "20", f"http://{base}{path}"]


def api_get(conn: Any, base: str, path: str) -> Any:
    code, out, err = run_on(conn, api_argv(base, path))
    if code != 0:
        raise MonitorError(f"GET {base}{path} on ops failed (exit {code}): "
                           f"{err.decode(errors='replace').strip()[-300:]}")
    doc = json.loads(out)
    if isinstance(doc, dict) and doc.get("status") not in (None, "success"):
        raise MonitorError(f"GET {base}{path}: {doc.get('error', doc)}")
    return doc


def prometheus(conn: Any, path: str) -> Any:
    return api_get(conn, c.PROMETHEUS, path)["data"]


def targets_down(targets: dict[str, Any]) -> list[dict[str, str]]:
    """The scrape targets that are not up, from /api/v1/targets' data."""
    out = []
    for t in targets.get("activeTargets", ()):
        if t.get("health") != "up":
            labels = t.get("labels", {})
            out.append({"job": labels.get("job", ""), "host": labels.get("host", ""),
                        "site": labels.get("site", ""), "check": labels.get("check", ""),
                        "instance": labels.get("instance", ""), "health": t.get("health", ""),
                        "error": t.get("lastError", "")})
    return out


def alerts_firing(alerts: dict[str, Any]) -> list[dict[str, str]]:
    """The alerts firing (not pending), from /api/v1/alerts' data."""
    out = []
    for a in alerts.get("alerts", ()):
        if a.get("state") == "firing":
            labels = a.get("labels", {})
            where = labels.get("site") or labels.get("host") or labels.get("instance", "")
            out.append({"alert": labels.get("alertname", ""), "where": where,
                        "severity": labels.get("severity", ""), "since": a.get("activeAt", ""),
                        "summary": a.get("annotations", {}).get("summary", "")})
    return out


def report(n_targets: int, down: list[dict[str, str]], firing: list[dict[str, str]]) -> str:
    lines = [f"targets: {n_targets - len(down)}/{n_targets} up"]
    for t in down:
        what = t["host"] or t["site"] or t["job"]
        lines.append(f"  DOWN  {t['job']:<10} {what:<18} {t['instance']}  {t['error']}".rstrip())
    lines.append(f"alerts firing: {len(firing)}")
    for a in firing:
        lines.append(f"  {a['severity'].upper():<8} {a['alert']:<22} {a['where']:<18} "
                     f"since {a['since'][:19]}  {a['summary']}".rstrip())
    return "\n".join(lines)


def status_of(inv: Inventory, connect: Callable[[str], Any]) -> dict[str, Any]:
    conn = connect(inv.bastion.name)
    targets = prometheus(conn, "/api/v1/targets?state=active")
    alerts = prometheus(conn, "/api/v1/alerts")
    return {"targets": len(targets.get("activeTargets", ())), "down": targets_down(targets),
            "firing": alerts_firing(alerts)}


@task(help={"env": ENV_HELP, "json": "print the status as one JSON document",
            "inventory": "inventory JSON file", "identity": "your key (with KEY-cert.pub)"})
def status(c_, env="lab", json_=False, inventory="", identity=""):
    """Targets down and alerts firing, from Prometheus on ops (exit 1 if any)."""
    try:
        with connected(env, inventory, identity) as (inv, connect):
            st = status_of(inv, connect)
    except (InventoryError, AccessError, MonitorError) as exc:
        raise Exit(f"monitor: {exc}", code=1) from exc
    except Exception as exc:  # noqa: BLE001 -- SSH errors of every kind: say which
        raise Exit(f"monitor: ops unreachable: {exc}", code=1) from exc
    print(json.dumps(st, indent=2) if json_ else report(st["targets"], st["down"], st["firing"]))
    if st["down"] or st["firing"]:
        raise Exit(code=1)


def read_password(stream: Any = None) -> bytes:
    """From the terminal without echo, else one line of stdin; never from argv or env."""
    stream = stream or sys.stdin
    text = getpass.getpass("SMTP password: ") if stream.isatty() else stream.readline()
    text = text.rstrip("\r\n")
    if not text:
        raise MonitorError("empty password: nothing written")
    return text.encode()


def smtp_password_argv() -> list[str]:
    """Root on ops: the password from stdin into its file, 0640 root:prometheus, atomically;
    then Alertmanager reloads (it reads the file when it sends)."""
    path = c.SMTP_PASSWORD_FILE
    script = (f"umask 077 && cat > {path}.new && chgrp prometheus {path}.new && "
              f"chmod 0640 {path}.new && mv -f {path}.new {path} && "
              "systemctl reload prometheus-alertmanager.service")
    return ["sh", "-c", script]


@task(help={"env": ENV_HELP, "inventory": "inventory JSON file",
            "identity": "your key (with KEY-cert.pub)"})
def smtp_password(c_, env="lab", inventory="", identity=""):
    """Set the email receiver's SMTP password on ops (typed, or piped on stdin)."""
    try:
        secret = read_password()
        with connected(env, inventory, identity) as (inv, connect):
            code, _out, err = run_on(connect(inv.bastion.name), smtp_password_argv(),
                                     stdin=secret, sudo=True)
    except (InventoryError, AccessError, MonitorError) as exc:
        raise Exit(f"monitor: {exc}", code=1) from exc
    if code != 0:
        raise Exit(f"monitor: writing the SMTP password on ops failed (exit {code}): "
                   f"{err.decode(errors='replace').strip()[-300:]}", code=1)
    print(f"monitor: SMTP password written to {c.SMTP_PASSWORD_FILE} on ops")
