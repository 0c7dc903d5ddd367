"""The procedure `fab decommission --site X` runs (issue 16, R-GDPR-8; docs/decommission.md).

Order (each stage checked; a stage that fails stops the ones after it, the report says where):
  0. preflight, nothing changed: the site is in the inventory, alone on its web host; every
     host involved answers; the CA directory is here; the plan (tasks/decommission_plan.py);
  1. confirmation: the domain typed back (or --yes);
  2. save: a final backup of the site to its three repositories (what the backups keep until
     their expiry); with --purge-backups-now the save is the client's export (fab export),
     made before, since the backups go too;
  3. access: every backup certificate of the site revoked in the user KRL, pushed to every host;
  4. proxy: its tombstone (roles/decommissioned.py: a deploy with the old model stops there),
     converged to the inventory without the site (its vhost and firewall rules go), then its
     public IP unbound: the site's IP serves nothing;
  5. storage A and B: the site's principal closed; its repository purged now, or its purge
     scheduled at the backups' expiry on the storage server's own timer;
  6. web host: services stopped, database and accounts dropped, files, private-files store
     and its key, configuration, local repository, release DB snapshots, logs and users deleted;
     each checked absent (backup/decommission.py);
  7. ops: its tombstone, then converged to the inventory without the site (its monitoring
     targets go; the bastion no longer forwards to the web host);
  8. checks from here: the site's IP answers on neither 80 nor 443;
  9. the web host's host certificate revoked in the host KRL;
 10. the Pulumi side: the model change and the resources `pulumi up` removes (`--unprotect`
     runs `pulumi state unprotect` for the protected ones).
"""
from __future__ import annotations

import getpass
import json
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import localcmd
from engine import ca_admin
from engine.access import Access, credentials
from engine.inventory import REPO, Inventory, load
from engine.run import converge_hosts
from roles import decommissioned, registry
from roles.backup.layout import PYTHON, RUNNER_DIR, BackupLayout
from sshtrust import ca
from tasks import decommission_plan as plan


class DecommissionError(RuntimeError):
    pass


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Report:
    env: str
    site: str
    domain: str
    mode: str  # "purge-now" | "scheduled"
    started: str = field(default_factory=now_iso)
    operator: str = field(default_factory=getpass.getuser)
    stages: list[dict[str, Any]] = field(default_factory=list)
    backups: dict[str, Any] = field(default_factory=dict)
    pulumi: dict[str, Any] = field(default_factory=dict)
    finished: str = ""

    def stage(self, name: str, where: str, ok: bool, detail: str = "",
              steps: list[dict[str, Any]] | None = None,
              checks: list[dict[str, Any]] | None = None) -> bool:
        self.stages.append({"stage": name, "where": where, "at": now_iso(), "ok": ok,
                            "detail": detail, "steps": steps or [], "checks": checks or []})
        return ok

    @property
    def errors(self) -> list[str]:
        out = []
        for s in self.stages:
            if not s["ok"] and s["detail"]:
                out.append(f"{s['stage']} ({s['where']}): {s['detail']}")
            out += [f"{s['stage']} ({s['where']}): "
                    + " ".join(filter(None, (x["what"], x.get("where", ""))))
                    + f": {x['detail'] or 'failed'}"
                    for x in [*s["steps"], *s["checks"]] if not x["ok"]]
        return out

    @property
    def ok(self) -> bool:
        return bool(self.stages) and all(s["ok"] for s in self.stages) and not self.errors

    def document(self) -> dict[str, Any]:
        return {"schema": "hosting-decommission/1", "environment": self.env, "site": self.site,
                "domain": self.domain, "mode": self.mode, "operator": self.operator,
                "started": self.started, "finished": self.finished, "ok": self.ok,
                "errors": self.errors, "stages": self.stages, "backups": self.backups,
                "pulumi": self.pulumi}


def sudo(conn: Any, argv: list[str], timeout: int = 900) -> Any:
    return conn.run("sudo -n " + shlex.join(argv), hide=True, warn=True, timeout=timeout,
                    in_stream=False)


def onhost(conn: Any, args: list[str]) -> tuple[bool, dict[str, Any], str]:
    """backup/decommission.py on a host: (ok, its JSON document, its stderr)."""
    res = sudo(conn, ["env", f"PYTHONPATH={RUNNER_DIR}", PYTHON, "-m", "backup.decommission",
                      *args])
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        doc = {}
    return res.exited == 0 and bool(doc), doc, (res.stderr or "").strip()[-800:]


def backup_serials(ca_dir: Path, site: str) -> list[int]:
    """Every certificate the user CA issued for the site's backup principal (R-INC-3's
    register): all are revoked, expired ones too (harmless, and the audit sees them)."""
    principal = BackupLayout(site).principal
    return sorted({c.serial for c in ca.issued(ca_admin.paths(ca_dir)["user_ca"])
                   if principal in c.principals})


def serves_nothing(address: str, ports: tuple[int, ...] = (80, 443),
                   timeout: float = 3.0) -> dict[str, str]:
    """{port: what a TCP connect from here saw}; "refused"/"timeout"/"unreachable" = nothing."""
    out = {}
    for port in ports:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                out[str(port)] = "open"
        except ConnectionRefusedError:
            out[str(port)] = "refused"
        except TimeoutError:
            out[str(port)] = "timeout"
        except OSError as exc:
            out[str(port)] = f"unreachable ({exc.strerror or exc})"
    return out


@dataclass
class Options:
    env: str = "lab"
    site: str = ""
    yes: bool = False
    purge_backups_now: bool = False
    unprotect: bool = False
    out: str = ""
    inventory: str = ""
    identity: str = ""
    ca_dir: str = ""
    stack_file: str = ""


def default_stack_file(env: str) -> Path:
    """The model the environment comes from: Pulumi.<env>.yaml (the lab's is prod's)."""
    return REPO / f"Pulumi.{'prod' if env == 'lab' else env}.yaml"


def run_decommission(o: Options, confirm: Callable[[str], str] = input,
                     emit: Callable[[str], None] = print) -> Report:
    if not o.site:
        raise DecommissionError("--site is required")
    inv = load(o.env, o.inventory or None)
    without = plan.inventory_without(inv.doc, o.site)  # refuses an unknown site first
    reduced = Inventory.from_doc(without)
    site = inv.site(o.site)
    web = inv.host(site.host)
    creds = credentials(o.env, o.identity, o.ca_dir, inv=inv)
    if not ca_admin.paths(creds.ca_dir)["user_ca"].is_file():
        raise DecommissionError(f"no user CA in {creds.ca_dir}: the certificates cannot be "
                                "revoked (--ca-dir)")
    stack_file = Path(o.stack_file) if o.stack_file else default_stack_file(o.env)
    report = Report(o.env, o.site, site.domain, "purge-now" if o.purge_backups_now
                    else "scheduled")
    if not o.purge_backups_now:
        for tier, when in plan.purge_dates(inv.backup_policy, datetime.now(UTC)).items():
            report.backups[tier] = {"purge_at": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    from tasks.decommission_report import pulumi_section, write_report
    try:
        report.pulumi = pulumi_section(o.env, o.site, stack_file)
    except (OSError, plan.PlanError, ValueError) as exc:
        report.pulumi = {"error": f"{stack_file}: {exc}"}
    # 0. every host answers before anything changes
    involved = [web, inv.proxy, inv.bastion, inv.storage_host("a"), inv.storage_host("b")]
    access = Access(inv, creds)
    try:
        down = []
        for h in involved:
            try:
                if sudo(access.connection(h), ["true"], timeout=60).exited != 0:
                    down.append(f"{h.name}: sudo refused")
            except Exception as exc:  # noqa: BLE001 - every host named
                down.append(f"{h.name}: {type(exc).__name__}: {exc}")
        has_data = sudo(access.connection(web), ["test", "-d", f"/srv/{o.site}"]).exited == 0
    finally:
        access.close()
    if down:
        raise DecommissionError("hosts not reachable, nothing changed: " + "; ".join(down))
    # 1. confirmation
    what = (f"DELETE site {o.site} ({site.domain}) on {o.env}: its database, files, keys and "
            f"web host data; its backups {'NOW' if o.purge_backups_now else 'at their expiry'}")
    emit(what)
    try:
        typed = "" if o.yes else confirm(f"type the domain {site.domain} to confirm: ")
    except EOFError:  # no terminal (CI without --yes)
        typed = ""
    if not o.yes and typed.strip() != site.domain:
        raise DecommissionError("not confirmed (the domain typed back did not match; --yes "
                                "in CI); nothing changed")
    out = Path(o.out or f"decommission-{o.env}-{o.site}-{report.started.replace(':', '')}")
    out.mkdir(parents=True, exist_ok=True)
    try:
        stages(o, inv, reduced, creds, report, has_data, emit)
    finally:
        report.finished = now_iso()
        write_report(report, out)
        emit(f"decommission {o.site}: report {out / 'decommission.md'} and "
             f"{out / 'decommission.json'}")
    return report


def stages(o: Options, inv: Inventory, reduced: Inventory, creds: Any, report: Report,
           has_data: bool, emit: Callable[[str], None]) -> None:
    site = inv.site(o.site)
    web = inv.host(site.host)

    def done(ok: bool, name: str) -> bool:
        emit(f"decommission {o.site}: {name}: {'ok' if ok else 'FAILED'}")
        return ok

    # 2. save
    if o.purge_backups_now:
        ok = report.stage("save", web.name, True, "--purge-backups-now: the backups go too; "
                          "the save is the client's export (fab export) made before")
    elif not has_data:
        ok = report.stage("save", web.name, True, f"/srv/{o.site} is gone already (an "
                          "earlier run): nothing left to back up")
    else:
        access = Access(inv, creds)
        try:
            res = sudo(access.connection(web), ["env", f"PYTHONPATH={RUNNER_DIR}", PYTHON,
                                                "-m", "backup.run", "--site", o.site])
        finally:
            access.close()
        ok = report.stage("save", web.name, res.exited == 0,
                          "final backup to local, A and B" if res.exited == 0 else
                          f"final backup failed (exit {res.exited}): "
                          f"{(res.stderr or res.stdout).strip()[-600:]}")
    if not done(ok, "final backup"):
        return
    # 3. access: the site's backup certificates revoked, the KRL on every host
    serials = backup_serials(creds.ca_dir, o.site)
    if serials:
        ca_admin.revoke(creds.ca_dir, serials=serials)
    krl = creds.user_krl.read_bytes()
    rep = converge_hosts(inv, Access(inv, creds), list(inv.hosts),
                         lambda _ctx: ca_admin.krl_role(krl), creds.settings(),
                         emit=lambda _m: None)
    failed = [f"{r.host}: {r.error or 'failed'}" for r in rep.results if not r.ok]
    ok = report.stage("revoke", "user KRL, every host", not failed,
                      f"serials {', '.join(map(str, serials)) or 'none issued'} revoked; "
                      + ("KRL pushed to every host" if not failed else "; ".join(failed)))
    if not done(ok, "backup certificates revoked"):
        return
    # 4. proxy: no vhost, no firewall opening, no address for the site; its tombstone first,
    # so that no deploy with the old model gives them back (roles/decommissioned.py)
    ok = (leave_tombstone(inv, creds, inv.proxy, o.site, report)
          and converge_to(reduced, creds, [reduced.proxy], report, "proxy"))
    access = Access(inv, creds)
    try:
        conn = access.connection(inv.proxy)
        shown = sudo(conn, ["ip", "-o", "-4", "addr", "show"])
        bound_to = [(line.split()[1], line.split()[3]) for line in shown.stdout.splitlines()
                    if line.split()[3:4] and line.split()[3].split("/")[0] == site.public_ip]
        devs = [dev for dev, _addr in bound_to]
        for dev, address in bound_to:
            sudo(conn, ["ip", "addr", "del", address, "dev", dev])
        again = sudo(conn, ["ip", "-o", "-4", "addr", "show"])
        listening = sudo(conn, ["ss", "-Hltn"]).stdout
    finally:
        access.close()
    bound = any(line.split()[3:4] and line.split()[3].split("/")[0] == site.public_ip
                for line in again.stdout.splitlines())
    heard = f"{site.public_ip}:" in listening
    ok = report.stage("unbind", inv.proxy.name, ok and not bound and not heard,
                      f"{site.public_ip} removed from {', '.join(devs) or 'no interface'}",
                      checks=[{"what": f"{site.public_ip} on no interface of {inv.proxy.name}",
                               "ok": not bound, "detail": ""},
                              {"what": f"nothing listens on {site.public_ip}", "ok": not heard,
                               "detail": ""}]) and ok
    if not done(ok, "proxy"):
        return
    # 5. storage servers
    for tier in ("a", "b"):
        host = inv.storage_host(tier)
        args = ["storage", "--site", o.site]
        if o.purge_backups_now:
            args.append("--purge-now")
        else:
            args += ["--purge-at", report.backups[tier]["purge_at"]]
        ok = host_stage(inv, creds, host, args, report, f"backups {tier.upper()}") and ok
        entry = report.backups.setdefault(tier, {})
        entry.update(host=host.name, **({"purged_at": now_iso()} if o.purge_backups_now
                                        else {}))
    # 6. web host
    ok = host_stage(inv, creds, web, ["web", "--site", o.site, "--database", site.database],
                    report, "web host") and ok
    report.backups["local"] = {"host": web.name, "purged_at": now_iso(),
                               "detail": "the local repository is deleted with the web host's "
                                         "data"}
    done(ok, "storage and web host")
    # 7. ops: monitoring targets, bastion forwarding (its tombstone first, as on the proxy)
    ok = (leave_tombstone(inv, creds, inv.bastion, o.site, report)
          and converge_to(reduced, creds, [reduced.bastion], report, "ops") and ok)
    # 8. the site's IP from here
    seen = serves_nothing(site.public_ip)
    silent = all(v != "open" for v in seen.values())
    report.stage("check", f"{site.public_ip} from the admin machine", silent,
                 ", ".join(f"{p}: {v}" for p, v in seen.items()))
    # 9. the web host's host certificate, once all went well (a re-run must still reach it)
    if not report.ok:
        return
    key_id = f"{o.env}-host-{web.name}"
    hosts_issued = [c.serial for c in ca.issued(ca_admin.paths(creds.ca_dir)["host_ca"])
                    if c.principals[:1] == (web.name,)]
    if hosts_issued:
        ca_admin.revoke(creds.ca_dir, serials=hosts_issued, host=True)
    report.stage("revoke", "host KRL", True,
                 f"host certificate(s) of {web.name} ({key_id}): serials "
                 f"{', '.join(map(str, hosts_issued)) or 'none in the register'} revoked")
    # 10. Pulumi side
    if o.unprotect:
        unprotect(o.env, report)


def converge_to(reduced: Inventory, creds: Any, hosts: list[Any], report: Report,
                name: str) -> bool:
    rep = converge_hosts(reduced, Access(reduced, creds), hosts, registry.desired,
                         creds.settings(reduced), emit=lambda _m: None)
    failed = [f"{r.host}: {r.error or [o.error for o in r.outcomes if not o.ok]}"
              for r in rep.results if not r.ok]
    return report.stage(name, ", ".join(h.name for h in hosts), not failed,
                        "; ".join(failed) or "converged to the inventory without the site: "
                        + ", ".join(f"{r.host} {r.changed} changed" for r in rep.results))


def leave_tombstone(inv: Inventory, creds: Any, host: Any, site: str, report: Report) -> bool:
    access = Access(inv, creds)
    try:
        res = sudo(access.connection(host), decommissioned.write_argv(site, now_iso()))
        ok, err = res.exited == 0, (res.stderr or res.stdout or "").strip()[-600:]
    except Exception as exc:  # noqa: BLE001 - reported as the stage's failure
        ok, err = False, f"{type(exc).__name__}: {exc}"
    finally:
        access.close()
    return report.stage("tombstone", host.name, ok,
                        f"{decommissioned.tombstone(site)} written: a deploy with the old model "
                        "refuses to set the site up here again" if ok else err)


def host_stage(inv: Inventory, creds: Any, host: Any, args: list[str], report: Report,
               name: str) -> bool:
    access = Access(inv, creds)
    try:
        ok, doc, err = onhost(access.connection(host), args)
    except Exception as exc:  # noqa: BLE001 - reported, the other hosts still done
        ok, doc, err = False, {}, f"{type(exc).__name__}: {exc}"
    finally:
        access.close()
    return report.stage(name, host.name, ok, err if not ok else "",
                        doc.get("steps", []), doc.get("checks", []))


def unprotect(env: str, report: Report) -> None:
    removals = [r for r in report.pulumi.get("removals", []) if r["protect"]]
    if env == "lab":
        report.stage("unprotect", "pulumi state", True, "lab: no Pulumi state (the lab's "
                     "model change removes its host)")
        return
    errors = []
    for r in removals:
        argv = plan.unprotect_argv(env, plan.Removal(r["type"], r["name"], r["urn"], True))
        try:
            localcmd.run(argv, cwd=REPO, timeout=300)
        except localcmd.CommandError as exc:
            errors.append(str(exc))
    report.stage("unprotect", "pulumi state", not errors,
                 "; ".join(errors) or f"{len(removals)} resource(s) unprotected")
