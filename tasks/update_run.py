"""`fab update`: qualify one artifact on a fresh, sanitized copy of prod, then ship that same
artifact to prod, and put prod back (code and database) if anything fails there (issue 15;
R-MNT-1, R-MNT-2, R-HOST-3, R-GDPR-1/4, R-INC-4). docs/updates.md tells the whole workflow.

  0. refuse before anything changes: unknown site (in prod or preprod), a ref that does not
     build, prod not at a known release or left in maintenance, another update of the site
     running (a lock directory on prod's web host, taken with mkdir: atomic);
  1. build once (tasks.web_codebase): one archive, one sha256; each host checks it on receipt;
  2. a fresh prod copy: `fab export --plain` of prod (a new local backup, then its database and
     files), checked against its manifest, uploaded to preprod's web host and loaded there
     (the web helper's `copy-in`, which saves preprod's database first) while preprod's proxy
     keeps visitors out (its maintenance flag);
  3. sanitize (the helper's `sanitize`): the configured SQL steps, then no e-mail address
     outside the reserved domain may be left in any text column, or the qualification fails;
     only then does preprod's proxy serve the copy again (to its allow-list only);
  4. release the artifact on preprod (maintenance, snapshot, `drush deploy`, health);
  5. the checks (tasks.update_checks) -> the qualification; `--check` stops here;
  6. release the same artifact on prod, then the same checks there; the maintenance window is
     the host's own timing of the steps between maintenance on and off;
  7. a failed check on prod: the helper's `revert` puts back the database snapshot the release
     took in step 6 and the previous code; a failed release has already gone back by itself;
  8. one line in ops's update log, and in the incident record when it failed.
"""
from __future__ import annotations

import hashlib
import json
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup.export_verify import verify_archive
from engine.channel import upload as upload_file
from engine.inventory import Inventory, InventoryError
from roles.monitoring.incidents import UPDATE_LOG
from roles.web.role import HELPER
from roles.web.site import WebSite, web_site
from tasks import update_checks as checks
from tasks import web_codebase as codebase
from tasks import web_release as rel
from tasks.export_tasks import ExportTaskError, run_export
from tasks.incident_record import ByName, now, record_incident
from tasks.update_plan import (
    Report,
    UpdatePolicy,
    after_prod,
    maintenance_seconds,
    promote,
    sanitize_steps,
)

LOCK_ROOT = "/var/lib/hosting/update-locks"


class UpdateError(RuntimeError):
    pass


@dataclass
class Side:
    """One environment: its inventory, how to reach a host, and how `fab` names it."""
    env: str
    inv: Inventory
    connect: Callable[[str], Any]
    inventory_file: str = ""
    identity: str = ""


def _step(report: Report, name: str, fn: Callable[[], Any], emit: Callable[[str], None]) -> Any:
    t0 = time.monotonic()
    emit(f"update {report.site}: {name} ...")
    try:
        return fn()
    finally:
        report.steps[name] = round(time.monotonic() - t0 + report.steps.get(name, 0), 3)


def _sudo_json(conn: Any, argv: list[str], timeout: int = 1800) -> dict[str, Any]:
    res = conn.run("sudo -n " + shlex.join(argv), hide=True, warn=True, timeout=timeout,
                   in_stream=False)
    if res.exited != 0:
        raise UpdateError((res.stderr or res.stdout).strip()[-1500:]
                          or f"exited {res.exited}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- 0. refusals --------------------------------------------------------------------------
def sites_of(prod: Side, pre: Side, name: str) -> tuple[WebSite, WebSite]:
    try:
        return web_site(prod.inv, name), web_site(pre.inv, name)
    except InventoryError as exc:
        raise UpdateError(f"--site {name!r}: {exc}") from None


def check_prod_clean(prod: Side, site: WebSite) -> str:
    """The live release id; UpdateError when prod is not at a known, healthy release."""
    status = rel.status(prod.inv, prod.connect, site.name)
    current, last = status.get("current"), status.get("last_record") or {}
    if not current or current not in (status.get("releases") or {}):
        raise UpdateError(f"prod {site.name} is not at a known release (current: {current}); "
                          "release it with `fab web.release` first")
    if last.get("maintenance") or last.get("result") in ("rollback failed", "revert failed"):
        raise UpdateError(f"prod {site.name}: its last release record says "
                          f"{last.get('result')!r} (maintenance {last.get('maintenance')}): "
                          "repair it before updating")
    return current


def lock(conn: Any, site: str, ref: str) -> str:
    path = f"{LOCK_ROOT}/{site}"
    res = conn.run(f"sudo -n mkdir -p -m 0700 {LOCK_ROOT} && sudo -n mkdir -m 0700 "
                   f"{shlex.quote(path)} && echo {shlex.quote(f'{now()} {ref}')} | "
                   f"sudo -n tee {shlex.quote(path + '/owner')} >/dev/null",
                   hide=True, warn=True, in_stream=False)
    if res.exited != 0:
        held = conn.run(f"sudo -n cat {shlex.quote(path + '/owner')}", hide=True, warn=True,
                        in_stream=False).stdout.strip()
        raise UpdateError(f"another update of {site} is running (lock {path}: {held or '?'}); "
                          f"if it is not, remove the directory on the web host")
    return path


def unlock(conn: Any, path: str) -> None:
    conn.run(f"sudo -n rm -rf {shlex.quote(path)}", hide=True, warn=True, in_stream=False)


# -- 2, 3. the sanitized copy --------------------------------------------------------------
def fresh_copy(prod: Side, pre: Side, site: WebSite, psite: WebSite, work: Path,
               emit: Callable[[str], None]) -> dict[str, Any]:
    archive = work / "prod-export.tar"
    try:
        run_export(prod.env, site.name, str(archive), plain=True,
                   inventory=prod.inventory_file, identity=prod.identity, emit=emit)
    except ExportTaskError as exc:
        raise UpdateError(f"the copy of prod failed: {exc}") from exc
    with archive.open("rb") as f:
        manifest = verify_archive(f)
        f.seek(0)
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    conn = pre.connect(psite.host)
    updir = conn.run("mktemp -d /tmp/hosting-copy.XXXXXXXX", hide=True,
                     in_stream=False).stdout.strip()
    try:
        upload_file(conn, str(archive), f"{updir}/export.tar")
        lay = psite.layout
        out = _sudo_json(conn, [*rel.helper_argv("copy-in", psite), "--archive",
                                f"{updir}/export.tar", "--sha256", digest,
                                "--public", f"{lay.root}/shared/files",
                                "--private", lay.private_files], timeout=3600)
    finally:
        conn.run(f"rm -rf {shlex.quote(updir)}", hide=True, warn=True, in_stream=False)
        archive.unlink(missing_ok=True)
    out["prod_snapshots"] = manifest.get("snapshots")
    return out


def sanitize(pre: Side, psite: WebSite, settings: UpdatePolicy) -> dict[str, Any]:
    conn = pre.connect(psite.host)
    updir = conn.run("mktemp -d /tmp/hosting-sanitize.XXXXXXXX", hide=True,
                     in_stream=False).stdout.strip()
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(sanitize_steps(settings), f)
            f.flush()
            upload_file(conn, f.name, f"{updir}/steps.json")
        return _sudo_json(conn, [*HELPER, "sanitize", "--database", psite.database,
                                 "--sql-file", f"{updir}/steps.json",
                                 "--allowed-domain", settings.allowed_email_domain])
    finally:
        conn.run(f"rm -rf {shlex.quote(updir)}", hide=True, warn=True, in_stream=False)


def proxy_flag(side: Side, site: str, on: bool) -> None:
    from roles.proxy.config import proxy_config

    flag = next(s.maintenance_flag for s in proxy_config(side.inv).sites if s.name == site)
    cmd = f"sudo -n touch {shlex.quote(flag)}" if on else f"sudo -n rm -f {shlex.quote(flag)}"
    side.connect(side.inv.proxy.name).run(cmd, hide=True, in_stream=False)


def cron_timer(side: Side, site: WebSite, on: bool) -> None:
    unit = f"{site.layout.cron_unit}.timer"
    side.connect(site.host).run(f"sudo -n systemctl {'start' if on else 'stop'} "
                                f"{shlex.quote(unit)}", hide=True, in_stream=False)


# -- 4-7. release and check ------------------------------------------------------------------
def release_and_check(side: Side, site: WebSite, built: codebase.Built, settings: UpdatePolicy,
                      report: Report, label: str, emit: Callable[[str], None]
                      ) -> tuple[rel.ReleaseReport | None, list[dict[str, Any]], str]:
    conn = side.connect(site.host)
    mark = checks.log_mark(conn)
    try:
        done = _step(report, f"{label}: release", lambda: rel.release(
            side.inv, side.connect, site.name, emit=emit, built=built), emit)
    except rel.ReleaseError as exc:
        report.errors.append(f"{label}: release failed: {exc}")
        return None, [], str(exc.record.get("result") or "failed")
    found = _step(report, f"{label}: checks",
                  lambda: checks.run_checks(conn, site, settings, mark), emit)
    return done, found, "live"


def run_update(prod: Side, pre: Side, site_name: str, ref: str, settings: UpdatePolicy,
               path: str | None = None, check_only: bool = False, out_dir: Path | None = None,
               emit: Callable[[str], None] = print) -> Report:
    site, psite = sites_of(prod, pre, site_name)
    report = Report(site_name, prod.env, pre.env, ref, now())
    sanitize_steps(settings)  # bad settings fail here, before anything changes
    report.from_release = _step(report, "check prod", lambda: check_prod_clean(prod, site), emit)
    held = lock(prod.connect(site.host), site_name, ref)
    try:
        with tempfile.TemporaryDirectory(prefix="hosting-update-") as tmp:
            work = Path(tmp)
            built = _step(report, "build", lambda: _build(prod, site, work, ref, path), emit)
            report.artifact_sha256, report.artifact_source = built.sha256, built.source
            _qualify(prod, pre, site, psite, built, settings, report, work, emit)
            if not promote(report.qualification):
                report.outcome = "qualification failed"
            elif check_only:
                report.outcome = "qualified"
            else:
                _promote(prod, site, built, settings, report, emit)
    except Exception as exc:
        report.errors.append(str(exc))
        if report.outcome == "promoting":
            report.outcome = "failed on prod"
        else:
            report.outcome = "failed before prod"
            report.errors.append("prod untouched; if the copy was not sanitized, preprod's "
                                 "proxy keeps its maintenance page on and its cron stopped")
        raise
    finally:
        unlock(prod.connect(site.host), held)
        _record(prod, report, emit)
        if out_dir is not None:
            write_report(report, out_dir)
    return report


def _build(prod: Side, site: WebSite, work: Path, ref: str, path: str | None
           ) -> codebase.Built:
    try:
        if path:
            return codebase.build_directory(Path(path), work)
        spec = dict(site.codebase)
        if ref != "model":  # "model": the codebase exactly as the model gives it
            if spec.get("type") not in ("git", "composer"):
                raise UpdateError(f"--ref {ref!r}: the site's codebase is a {spec.get('type')} "
                                  "(no refs): change the model, then use --ref model")
            spec["ref"] = ref
        return codebase.build(spec, work, f"--ref {ref}")
    except codebase.CodebaseError as exc:
        raise UpdateError(f"--ref {ref!r}: cannot build it: {exc}") from exc


def _qualify(prod: Side, pre: Side, site: WebSite, psite: WebSite, built: codebase.Built,
             settings: UpdatePolicy, report: Report, work: Path,
             emit: Callable[[str], None]) -> None:
    report.outcome = "qualifying"
    proxy_flag(pre, psite.name, True)  # nothing of the copy is served before it is sanitized
    # Nor does preprod's cron run on production data (mails to real addresses) before then.
    cron_timer(pre, psite, False)
    copy = _step(report, "preprod: fresh copy of prod",
                 lambda: fresh_copy(prod, pre, site, psite, work, emit), emit)
    cleaned = _step(report, "preprod: sanitize", lambda: sanitize(pre, psite, settings), emit)
    cron_timer(pre, psite, True)
    proxy_flag(pre, psite.name, False)
    done, found, result = release_and_check(pre, psite, built, settings, report, "preprod",
                                            emit)
    report.qualification = {"copy": copy, "sanitize": cleaned, "release_result": result,
                            "release": done.release if done else None, "checks": found}


def _promote(prod: Side, site: WebSite, built: codebase.Built, settings: UpdatePolicy,
             report: Report, emit: Callable[[str], None]) -> None:
    report.outcome = "promoting"
    done, found, result = release_and_check(prod, site, built, settings, report, "prod", emit)
    report.prod_checks = found
    if done is not None:
        report.to_release = done.release
        report.maintenance_seconds = maintenance_seconds(done.host)
    decision = after_prod(result, found)
    if decision == "live":
        report.outcome = "live"
        return
    if decision == "rolled back":
        report.outcome = f"prod release {result}"
        return
    report.errors += [f"prod: {c['name']}: {c['detail']}" for c in found if not c["ok"]]
    try:
        _step(report, "prod: revert", lambda: _sudo_json(
            prod.connect(site.host),
            [*rel.helper_argv("revert", site), "--release", report.to_release or ""]), emit)
        report.outcome = "reverted"
    except UpdateError as exc:
        report.errors.append(f"prod: revert failed: {exc}")
        report.outcome = "revert failed"
        report.errors.append(rel.proxy_maintenance(prod.inv, prod.connect, site.name))


def _record(prod: Side, report: Report, emit: Callable[[str], None]) -> None:
    record = report.record()
    record_incident(prod.inv, ByName(prod.connect), record, emit, log=UPDATE_LOG,
                    what="update log")
    if record["status"] == "failed":
        record_incident(prod.inv, ByName(prod.connect), record, emit)


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    from tasks.update_plan import render_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"update-{report.site}-{report.started.replace(':', '')}"
    js, md = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    js.write_text(json.dumps(report.as_dict(), indent=1, sort_keys=True, default=str) + "\n")
    md.write_text(render_markdown(report))
    return js, md
