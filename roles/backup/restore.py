"""`fab restore --site NAME [--at DATE] [--from local|a|b] [--to HOST]` (R-INC-1, R-INC-4).

Rebuild a site from a backup, on its own web host or on a fresh one (the same inventory host,
re-created empty after an incident):
  1. the target gets the repository password back from the storage server if it lacks it
     (a fresh host), BEFORE its roles run (they would otherwise generate a new one);
  2. the target is converged: baseline, web tier, backup role (packages, users, database and
     its user, encrypted private files mounted) - a no-op on a healthy host;
  3. `fab backup.setup` for the site: the target's backup key certified, its local
     repository created with the off-site chunker parameters;
  4. `backup.restore` on the target (files, database, checks; the host configuration beside
     the live one with --stage-config);
  5. the site must answer HTTP 200 on the target, through its own nginx;
  6. the RTO (wall-clock time of the whole) is printed, and the record kept on the target
     (runs.jsonl) and here (restores.jsonl beside the CA directory's state).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from roles import registry
from roles.access import Access, credentials
from roles.backup.layout import CONFIG_DIR, PYTHON, RUNNER_DIR, BackupLayout
from roles.backup.setup import SetupError, converge_files, setup_site, sudo
from roles.core.resources import Directory, File
from roles.inventory import load
from roles.run import converge_hosts


class RestoreTaskError(RuntimeError):
    pass




def run_restore(env: str, site: str, at: str = "", source: str = "a", to: str = "",
                apply_config: bool = False, inventory: str = "", identity: str = "",
                ca_dir: str = "", emit: Callable[[str], None] = print,
                stage_config: bool = False, redump: bool = False) -> dict[str, Any]:
    t0 = time.monotonic()
    if source not in ("local", "a", "b"):
        raise RestoreTaskError(f"--from {source!r}: local, a or b")
    inv = load(env, inventory or None)
    creds = credentials(env, identity, ca_dir)
    sites = {s["name"]: s for s in inv.doc["sites"]}
    if site not in sites:
        raise RestoreTaskError(f"no site {site!r}; sites: {', '.join(sites)}")
    target = inv.host(to or sites[site]["host"])
    if target.name != sites[site]["host"]:
        # One site per web VM (R-HOST-2): a restore elsewhere is a re-created host of the
        # same name, or an inventory change first (the host must be the site's in the model).
        raise RestoreTaskError(f"{target.name} does not hold {site} in the inventory "
                               f"({sites[site]['host']} does): rebuild that host instead")
    lay = BackupLayout(site)

    def access() -> Access:
        return Access(inv, creds)

    timings: dict[str, float] = {}
    t = time.monotonic()
    a = access()
    try:
        has_password = sudo(a.connection(target), ["test", "-s", lay.password],
                            warn=True).exited == 0
        password = ""
        if not has_password:
            storage = inv.host(inv.doc["storage"]["b" if source == "b" else "a"])
            password = sudo(a.connection(storage), ["cat", lay.storage_password]).stdout
    finally:
        a.close()
    if not has_password:
        if source == "local":
            raise RestoreTaskError(f"{target.name} has no backup password: its local "
                                   "repository is gone too; restore --from a or b")
        converge_files(inv, access(), target, [
            Directory("/etc/hosting", 0o755), Directory(CONFIG_DIR, 0o700),
            File(lay.password, password, 0o600, sensitive=True)], emit)
        emit(f"restore {site}: repository password installed on {target.name} from storage")
    timings["password"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    report = converge_hosts(inv, access(), [target], registry.desired, creds.settings(),
                            emit=lambda _m: None)
    if not report.ok:
        r = report.results[0]
        raise RestoreTaskError(f"converging {target.name} failed: "
                               f"{r.error or [o.error for o in r.outcomes if not o.ok]}")
    emit(f"restore {site}: {target.name} converged ({report.results[0].changed} changed)")
    timings["converge"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    try:
        setup_site(inv, access, creds.ca_dir, site, emit)
    except SetupError as exc:
        if source != "local":
            raise RestoreTaskError(f"backup access of {target.name}: {exc}") from exc
    timings["backup_access"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    argv = ["env", f"PYTHONPATH={RUNNER_DIR}", PYTHON, "-m", "backup.restore", "--site", site,
            "--from", source]
    if at:
        argv += ["--at", at]
    if apply_config:
        argv.append("--apply-config")
    elif stage_config:
        argv.append("--stage-config")
    if redump:
        argv.append("--redump")
    a = access()
    try:
        conn = a.connection(target)
        res = sudo(conn, argv, timeout=6 * 3600, warn=True)
        timings["restore"] = round(time.monotonic() - t, 1)
        s = sites[site]
        check = conn.run(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 20 "
                         f"--resolve {s['domain']}:80:{target.private_ip} "
                         f"http://{s['domain']}/", hide=True, warn=True,
                         in_stream=False)
    finally:
        a.close()
    try:
        record = json.loads(res.stdout)
    except ValueError:
        raise RestoreTaskError(f"restore on {target.name} failed: "
                               f"{(res.stderr or res.stdout).strip()[-1500:]}") from None
    answer = check.stdout.strip()
    result = {
        "site": site, "target": target.name, "from": source, "at": at or "newest",
        "ok": res.exited == 0 and answer == "200",
        "host_result": record.get("result"), "errors": record.get("errors", []),
        "restore": record.get("restore", {}), "site_answers": answer,
        "timings": timings, "rto_seconds": round(time.monotonic() - t0, 1),
    }
    r = result["restore"]
    emit(f"restore {site} from {source} onto {target.name}: "
         f"{'OK' if result['ok'] else 'FAILED'}; snapshot {r.get('snapshot_time', '?')}; "
         f"database {'identical' if r.get('verify', {}).get('matches_snapshot') else 'DIFFERS'}"
         f" ({sum(r.get('verify', {}).get('row_counts', {}).values())} rows); site answers "
         f"HTTP {answer}; RTO {result['rto_seconds']:.0f} s")
    return result
