"""The checks `fab update` runs on a site after an update, on preprod (qualification, step 5)
and again on prod (step 6), over the project's verified SSH (issue 15; R-MNT-2):

  smoke      each configured URL answers 200 on the web host (the 127.0.0.1 listener, the
             site's Host header, as the release's health check) and holds its marker
  fatals     no PHP fatal error written to PHP-FPM's or nginx's log since the mark taken
             before the update (the web helper's `logmark` / `fatals`: bytes appended)
  schema     no database update left pending (`drush updatedb:status`)
  cron       the site's cron runs (its systemd unit, started and waited for)
  command    the admin's own check, if any, as the site's PHP user in the live release

Each check is a dict {"name", "ok", "detail", "seconds"}; none raises: a check that cannot
run fails with the reason.
"""
from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from typing import Any

from roles.web.layout import PHP_VERSION
from roles.web.role import HELPER
from roles.web.site import WebSite
from tasks.update_plan import UpdatePolicy

TIMEOUT = 300


def _timed(name: str, fn: Callable[[], tuple[bool, str]]) -> dict[str, Any]:
    t0 = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as exc:  # noqa: BLE001 -- a check that cannot run fails, with why
        ok, detail = False, f"could not run: {exc}"
    return {"name": name, "ok": ok, "detail": detail[:500],
            "seconds": round(time.monotonic() - t0, 3)}


def _run(conn: Any, command: str, timeout: int = TIMEOUT) -> Any:
    return conn.run(command, hide=True, warn=True, timeout=timeout, in_stream=False)


def log_mark(conn: Any) -> dict[str, int]:
    res = _run(conn, "sudo -n " + shlex.join([*HELPER, "logmark"]))
    if res.exited != 0:
        raise RuntimeError(f"logmark failed: {res.stderr.strip()[-300:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def smoke(conn: Any, site: WebSite, path: str, marker: str) -> tuple[bool, str]:
    res = _run(conn, shlex.join(["curl", "-sS", "--max-time", "30", "-H", f"Host: {site.domain}",
                                 "-w", "\n%{http_code}", f"http://127.0.0.1{path}"]))
    body, _, code = res.stdout.rpartition("\n")
    if res.exited != 0 or code != "200":
        return False, f"{path}: answered {code or res.stderr.strip()[-200:]}"
    if marker and marker not in body:
        return False, f"{path}: 200 without {marker!r}"
    return True, f"{path}: 200" + (f" with {marker!r}" if marker else "")


def fatals(conn: Any, mark: dict[str, int]) -> tuple[bool, str]:
    res = _run(conn, "sudo -n " + shlex.join([*HELPER, "fatals", "--mark", json.dumps(mark)]))
    if res.exited != 0:
        return False, f"reading the logs failed: {res.stderr.strip()[-300:]}"
    found = json.loads(res.stdout.strip().splitlines()[-1])
    if found["count"]:
        return False, f"{found['count']} new: " + " / ".join(found["lines"][:2])
    return True, "no new PHP fatal error"


def _drush(site: WebSite, *args: str) -> str:
    lay = site.layout
    return "sudo -n -u " + shlex.join([lay.user, f"/usr/bin/php{PHP_VERSION}",
                                       f"{lay.current}/vendor/bin/drush",
                                       f"--root={lay.current}/web", f"--uri=https://{site.domain}",
                                       *args])


def schema(conn: Any, site: WebSite) -> tuple[bool, str]:
    res = _run(conn, _drush(site, "updatedb:status", "--format=json"))
    if res.exited != 0:
        return False, f"drush updatedb:status exited {res.exited}: {res.stderr.strip()[-300:]}"
    out = res.stdout.strip()
    pending = json.loads(out) if out else []
    if pending:
        return False, f"{len(pending)} database update(s) pending: {json.dumps(pending)[:200]}"
    return True, "no database update pending"


def cron(conn: Any, site: WebSite) -> tuple[bool, str]:
    unit = f"{site.layout.cron_unit}.service"
    res = _run(conn, f"sudo -n systemctl start {shlex.quote(unit)}")
    if res.exited != 0:
        return False, f"{unit} failed: {res.stderr.strip()[-300:]}"
    return True, f"{unit} ran"


def command(conn: Any, site: WebSite, cmd: str) -> tuple[bool, str]:
    lay = site.layout
    res = _run(conn, f"cd {shlex.quote(lay.current)} && sudo -n -u {shlex.quote(lay.user)} "
                     f"sh -c {shlex.quote(cmd)}")
    tail = (res.stdout + res.stderr).strip()[-300:]
    return res.exited == 0, f"exit {res.exited}: {tail}"


def run_checks(conn: Any, site: WebSite, settings: UpdatePolicy,
               mark: dict[str, int]) -> list[dict[str, Any]]:
    out = [_timed(f"smoke {s.path}", lambda s=s: smoke(conn, site, s.path, s.marker))
           for s in settings.smoke]
    out.append(_timed("no new PHP fatal error", lambda: fatals(conn, mark)))
    out.append(_timed("schema up to date", lambda: schema(conn, site)))
    out.append(_timed("cron runs", lambda: cron(conn, site)))
    if settings.check_command:
        out.append(_timed("custom check", lambda: command(conn, site, settings.check_command)))
    return out
