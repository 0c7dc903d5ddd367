"""`fab restore --site NAME [--at DATE | --snapshot ID] [--from local|a|b] [--to HOST]`
(R-INC-1, R-INC-4, issue 11).

Rebuild a site from a backup, on its own web host or on a fresh one (the same inventory host,
re-created empty after an incident: --to accepts only the site's own host, one site per VM,
R-HOST-2):
  0. the site is put in maintenance at the proxy (503 page, `fab proxy.maintenance`) for the
     whole restore; it is lifted only when the restore succeeded AND the site answers 200
     from its own nginx. Any failure leaves it in maintenance, and says so;
  1. the target gets the repository password back from the storage server if it lacks it
     (a fresh host), BEFORE its roles run (they would otherwise generate a new one);
  2. the target is converged: baseline, web tier, backup role (packages, users, database and
     its user, encrypted private files mounted) - a no-op on a healthy host;
  3. `fab backup.setup` for the site: the target's backup key certified, its local
     repository created with the off-site chunker parameters;
     A failure here stops the restore, --from local included (it used to be ignored there);
  4. `backup.restore` on the target: the safety snapshot of the current state first, then
     side database and side directories, verified, swapped in (backup/restore.py);
  5. the site must answer HTTP 200 on the target, through its own nginx;
  6. the RTO (wall-clock time of the whole) is printed, with the safety snapshot and the
     command that goes back to it, and the host's record (its restores.jsonl line, R-INC-4).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.access import Access, credentials
from engine.inventory import Inventory, InventoryError, Site, load
from engine.resources import Directory, File
from engine.run import converge_hosts
from roles import registry
from roles.backup.layout import CONFIG_DIR, PYTHON, RUNNER_DIR, BackupLayout
from roles.proxy.config import proxy_config
from tasks.backup_ledger import LedgerError, choose_from_ledger, pinned_argv, read_ledger
from tasks.backup_setup import SetupError, converge_files, setup_site, sudo
from tasks.incident_record import now as incident_now
from tasks.incident_record import record_incident, restore_record
from tasks.proxy_tasks import set_maintenance


class RestoreTaskError(RuntimeError):
    pass


def maintenance_note(site: str) -> str:
    return (f"{site} stays in maintenance at the proxy; once it is checked: "
            f"fab proxy.maintenance --site {site} --off")


def _record(inv: Any, access: Callable[[], Access], record: dict[str, Any],
            emit: Callable[[str], None]) -> bool:
    """The restore's line in ops's incident record (R-INC-4): reported, never fatal."""
    try:
        a = access()
    except Exception as exc:  # noqa: BLE001 -- the restore's own result must stand
        emit(f"incident record: no access ({exc}), not recorded: {json.dumps(record)}")
        return False
    try:
        return record_incident(inv, a, record, emit)
    finally:
        a.close()


def host_argv(site: str, source: str, at: str, snapshot: str, apply_config: bool,
              stage_config: bool, redump: bool) -> list[str]:
    """The on-host restore's command line (pure)."""
    if at and snapshot:
        raise RestoreTaskError("--at and --snapshot choose the backup each: give one")
    argv = ["env", f"PYTHONPATH={RUNNER_DIR}", PYTHON, "-m", "backup.restore", "--site", site,
            "--from", source]
    if at:
        argv += ["--at", at]
    if snapshot:
        argv += ["--snapshot", snapshot]
    if apply_config:
        argv.append("--apply-config")
    elif stage_config:
        argv.append("--stage-config")
    if redump:
        argv.append("--redump")
    return argv


def run_restore(env: str, site: str, at: str = "", source: str = "a", to: str = "",
                apply_config: bool = False, inventory: str = "", identity: str = "",
                ca_dir: str = "", emit: Callable[[str], None] = print,
                stage_config: bool = False, redump: bool = False,
                snapshot: str = "", before: str = "",
                allow_suspect: Sequence[str] = ()) -> dict[str, Any]:
    t0 = time.monotonic()
    started = incident_now()
    if source not in ("local", "a", "b"):
        raise RestoreTaskError(f"--from {source!r}: local, a or b")
    if before and source == "local":
        # After a compromise the host's own repository is the attacker's to rewrite.
        raise RestoreTaskError("--before (a suspected compromise) restores from a or b only: "
                               "the local repository of a compromised host is never used")
    if before and (at or snapshot):
        raise RestoreTaskError("--before chooses the backup: give it without --at/--snapshot")
    inv = load(env, inventory or None)
    creds = credentials(env, identity, ca_dir, inv=inv)
    try:
        s = inv.site(site)
    except InventoryError as exc:
        raise RestoreTaskError(str(exc)) from None
    target = inv.host(to or s.host)
    if target.name != s.host:
        # One site per web VM (R-HOST-2): a restore elsewhere is a re-created host of the
        # same name, or an inventory change first (the host must be the site's in the model).
        raise RestoreTaskError(f"{target.name} does not hold {site} in the inventory "
                               f"({s.host} does): rebuild that host instead")
    lay = BackupLayout(site)
    argv = host_argv(site, source, at, snapshot, apply_config, stage_config, redump)

    def access() -> Access:
        return Access(inv, creds)

    if source in ("a", "b") and not snapshot:
        # From A or B the storage server's ledger chooses, never the snapshots' claims
        # (issue 19); before the maintenance page: a choice that fails changes nothing.
        a = access()
        try:
            doc = read_ledger(inv, a, site, source)
            choice = choose_from_ledger(inv, doc, site, at, before, allow_suspect, emit)
        except LedgerError as exc:
            raise RestoreTaskError(f"nothing done: {exc}") from None
        finally:
            a.close()
        argv = pinned_argv(argv, choice)

    flag = next(p.maintenance_flag for p in proxy_config(inv).sites if p.name == site)
    proxy = inv.proxy

    def maintenance(on: bool) -> None:
        a = access()
        try:
            set_maintenance(a.connection(proxy), flag, on)
        finally:
            a.close()

    try:
        maintenance(True)  # before anything: nobody sees (or writes to) a half-restored site
    except Exception as exc:
        raise RestoreTaskError(f"could not put {site} in maintenance at {proxy.name}, nothing "
                               f"done: {exc}") from exc
    emit(f"restore {site}: maintenance page on at {proxy.name}")
    try:
        result = _restore(inv, creds, access, target, site, s, lay, source, at or before,
                          argv, emit, t0)
    except Exception as exc:
        _record(inv, access, restore_record(None, site, source, at, started, str(exc)), emit)
        raise RestoreTaskError(f"{exc}; {maintenance_note(site)}") from exc
    if result["ok"]:
        maintenance(False)
        result["maintenance"] = "lifted"
        emit(f"restore {site}: maintenance page off")
    else:
        result["maintenance"] = "on"
        emit(f"restore {site}: {maintenance_note(site)}")
    result["incident_recorded"] = _record(
        inv, access, restore_record(result, site, source, at, started), emit)
    return result


def _restore(inv: Inventory, creds: Any, access: Callable[[], Access], target: Any, site: str,
             s: Site, lay: BackupLayout, source: str, at: str, argv: list[str],
             emit: Callable[[str], None], t0: float) -> dict[str, Any]:
    timings: dict[str, float] = {}
    t = time.monotonic()
    a = access()
    try:
        has_password = sudo(a.connection(target), ["test", "-s", lay.password],
                            warn=True).exited == 0
        password = ""
        if not has_password:
            storage = inv.storage_host("b" if source == "b" else "a")
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
    report = converge_hosts(inv, access(), [target], registry.desired, creds.settings(inv),
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
        # Never ignored, --from local included: a host whose backup access is broken must
        # not be restored as if all were well (its next nights would fail silently).
        raise RestoreTaskError(f"backup access of {target.name}: {exc}") from exc
    timings["backup_access"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    a = access()
    try:
        conn = a.connection(target)
        res = sudo(conn, argv, timeout=6 * 3600, warn=True)
        timings["restore"] = round(time.monotonic() - t, 1)
        check = conn.run(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 20 "
                         f"--resolve {s.domain}:80:127.0.0.1 "
                         f"http://{s.domain}/", hide=True, warn=True,
                         in_stream=False)
    finally:
        a.close()
    try:
        record = json.loads(res.stdout)
    except ValueError:
        raise RestoreTaskError(f"restore on {target.name} failed: "
                               f"{(res.stderr or res.stdout).strip()[-1500:]}") from None
    answer = check.stdout.strip()
    r = record.get("restore", {})
    result = {
        "site": site, "target": target.name, "from": source, "at": at or "newest",
        "ok": res.exited == 0 and answer == "200", "exit_code": res.exited,
        "host_result": record.get("result"), "errors": record.get("errors", []),
        "restore": r, "site_answers": answer, "safety": r.get("safety"),
        "record": r.get("record"),
        "timings": timings, "rto_seconds": round(time.monotonic() - t0, 1),
    }
    verify = r.get("verify") or {}
    emit(f"restore {site} from {source} onto {target.name}: "
         f"{'OK' if result['ok'] else 'FAILED'} (live site {r.get('outcome', '?')}); snapshot "
         f"{r.get('snapshot_time', '?')}; database "
         f"{'identical' if verify.get('matches_snapshot') else 'NOT restored'}"
         f" ({sum((verify.get('row_counts') or {}).values())} rows); site answers "
         f"HTTP {answer}; RTO {result['rto_seconds']:.0f} s")
    for error in result["errors"]:
        emit(f"  - {error}")
    if result["safety"]:
        emit(f"restore {site}: safety snapshot {result['safety']['files'][:8]} (kept until "
             f"{result['safety']['expires']}); to go back: {result['safety']['go_back']}")
    if result["record"]:
        emit(f"restore {site}: recorded in {lay.state}/restores.jsonl: "
             f"{json.dumps(result['record'], sort_keys=True)}")
    return result
