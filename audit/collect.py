"""The collectors: what the platform says now, read over the admin's verified SSH access
(engine.access: host certificates checked, through the bastion), the sites' public IPs, the
verify suite and the CA directory on this machine. Nothing here grades; audit/checks/ does.

Each collector runs on its own: one that fails (ops without monitoring, a host unreachable,
no CA directory here) is recorded with its error and the others go on (the rows it feeds
become `manual` with that reason). Nothing secret is read into the report: restic's
password files are named to restic on the host, never read here.
"""
from __future__ import annotations

import json
import re
import shlex
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import localcmd
from audit.checks import Fact
from engine.inventory import REPO, Inventory
from model.bootstrap import PRINCIPALS_DIR
from roles.backup.config import site_paths
from roles.backup.layout import RUNNER_DIR, BackupLayout
from roles.web.layout import SiteLayout

TIMEOUT = 120
COLLECTORS = ("hosts", "backups", "backup_status", "restores", "monitoring", "incidents",
              "updates", "ca", "tls", "verify", "stacks")


def timed(fn: Callable[[], Any]) -> Fact:
    t0 = time.monotonic()
    try:
        data = fn()
    except Exception as exc:  # noqa: BLE001 -- every collector failure becomes a reason
        return Fact(False, error=f"{type(exc).__name__}: {exc}",
                    seconds=round(time.monotonic() - t0, 2))
    return Fact(True, data, seconds=round(time.monotonic() - t0, 2))


def sudo(conn: Any, argv: list[str], timeout: int = TIMEOUT) -> tuple[int, str, str]:
    """One command as root on a host (sudo -n), never reading this process's stdin."""
    res = conn.run("sudo -n " + shlex.join(argv), hide=True, warn=True, timeout=timeout,
                   in_stream=False)
    return res.exited, res.stdout, res.stderr


def out(conn: Any, argv: list[str]) -> str:
    code, stdout, stderr = sudo(conn, argv)
    if code != 0:
        raise RuntimeError(f"{shlex.join(argv)}: exit {code}: {stderr.strip()[-300:]}")
    return stdout


def sshd_settings(text: str) -> dict[str, str]:
    """`sshd -T` output: the first value of each keyword (lowercase)."""
    d: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        d.setdefault(key.lower(), value.strip())
    return d


def krl_serials(listing: str) -> list[str]:
    """`ssh-keygen -Q -l -f KRL`: the revoked serials (a number or a range `a-b`)."""
    return [line.split(":", 1)[1].strip() for line in listing.splitlines()
            if line.startswith("serial:")]


def serial_set(items: list[str]) -> set[int]:
    out: set[int] = set()
    for item in items:
        lo, _, hi = item.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def host_facts(inv: Inventory, conn: Any, name: str) -> dict[str, Any]:
    host = inv.host(name)
    d: dict[str, Any] = {}
    t = sshd_settings(out(conn, ["sshd", "-T"]))
    d["sshd"] = {k: t.get(k, "") for k in (
        "passwordauthentication", "kbdinteractiveauthentication", "authorizedkeysfile",
        "permitrootlogin", "trustedusercakeys", "authorizedprincipalsfile", "revokedkeys",
        "pubkeyauthentication")}
    code, text, _ = sudo(conn, ["cat", f"{PRINCIPALS_DIR}/{inv.login_user}"])
    d["principals"] = [x.strip() for x in text.splitlines() if x.strip()] if code == 0 else []
    if t.get("trustedusercakeys"):
        d["user_ca"] = sudo(conn, ["cat", t["trustedusercakeys"]])[1].strip()
    if t.get("revokedkeys"):
        code, listing, err = sudo(conn, ["ssh-keygen", "-Q", "-l", "-f", t["revokedkeys"]])
        serials = krl_serials(listing)
        d["krl_serials"] = serials
        d["krl_summary"] = (f"{len(serials)} revoked serial range(s)" if code == 0
                            else f"unreadable ({err.strip()[-120:]})")
    d["nft"] = json.loads(out(conn, ["nft", "-j", "list", "ruleset"]))["nftables"]
    d["debian_version"] = sudo(conn, ["cat", "/etc/debian_version"])[1].strip()
    periodic = sudo(conn, ["apt-config", "shell", "V", "APT::Periodic::Unattended-Upgrade"])[1]
    d["updates"] = {
        "periodic": periodic.strip().partition("=")[2].strip("'\""),
        "installed": "install ok installed" in sudo(
            conn, ["dpkg-query", "-W", "-f=${Status}", "unattended-upgrades"])[1],
        "timer": sudo(conn, ["systemctl", "is-enabled", "apt-daily-upgrade.timer"])[1].strip()}
    if host.role == "web":
        d.update(web_facts(inv, conn, name))
    if host.role == "storage":
        d["storage"] = storage_facts(inv, conn, t)
    return d


def redact(grant: str) -> str:
    """A SHOW GRANTS line with every quoted string after IDENTIFIED (a password hash, an
    authentication string) replaced: they are secrets; the rest of the line stays."""
    head, sep, tail = grant.partition(" IDENTIFIED ")
    return head + sep + re.sub(r"'(?:[^'\\]|\\.)*'", "'(redacted)'", tail) if sep else grant


def php_version(listing: str) -> str:
    """The PHP-FPM package's upstream version from `dpkg-query -W` lines (`php8.4-fpm
    8.4.11-1`): "8.4.11"; "" when none is installed."""
    for line in listing.splitlines():
        name, _, version = line.strip().partition(" ")
        if re.match(r"^php\d+\.\d+-fpm$", name) and version:
            return version.split("-")[0].split("+")[0]
    return ""


def web_facts(inv: Inventory, conn: Any, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    code, text, _ = sudo(conn, ["findmnt", "-J", "-t", "fuse.gocryptfs"])
    d["gocryptfs"] = json.loads(text).get("filesystems", []) if code == 0 and text.strip() \
        else []
    d["private_files"] = {s.name: SiteLayout(s.name).private_files for s in inv.sites_on(name)}
    d["php_version"] = php_version(sudo(conn, ["dpkg-query", "-W", "-f=${Package} ${Version}\\n",
                                               "php*-fpm"])[1])
    d["mariadb_version"] = sudo(conn, ["mariadb", "--version"])[1].strip()
    code, text, err = sudo(conn, ["mariadb", "--protocol=socket", "-N", "-B", "-e",
                                  "SELECT User, Host FROM mysql.user"])
    if code != 0:
        d["grants_error"] = err.strip()[-300:]
        return d
    grants = []
    for line in text.splitlines():
        user, _, where = line.partition("\t")
        if not line.strip():
            continue
        q = "SHOW GRANTS FOR '{}'@'{}'".format(user.replace("'", "''"), where.replace("'", "''"))
        c, g, e = sudo(conn, ["mariadb", "--protocol=socket", "-N", "-B", "-e", q])
        grants.append({"account": [user, where],
                       "grants": [redact(x) for x in g.splitlines()] if c == 0
                       else [f"(unreadable: {e.strip()[-200:]})"]})
    d["grants"] = grants
    return d


def storage_facts(inv: Inventory, conn: Any, sshd: dict[str, str]) -> dict[str, Any]:
    principals = {}
    for s in inv.sites:
        lay = BackupLayout(s.name)
        code, text, _ = sudo(conn, ["cat", f"{PRINCIPALS_DIR}/{lay.storage_user}"])
        principals[s.name] = text.strip() if code == 0 else ""
    code, text, _ = sudo(conn, ["grep", "-c", "--", "--append-only",
                                f"{RUNNER_DIR}/backup/serve.py"])
    return {"principals": principals, "append_only": code == 0 and text.strip() != "0",
            "password_auth": sshd.get("passwordauthentication", "")}


def per_host(inv: Inventory, access: Any, names: list[str],
             work: Callable[[Any, str], dict[str, Any]]) -> dict[str, Any]:
    """`work(connection, host)` on every host in parallel; a host's failure is its entry."""
    def one(name: str) -> dict[str, Any]:
        try:
            return work(access.connection(inv.host(name)), name)
        except Exception as exc:  # noqa: BLE001 -- reported in the host's entry
            return {"error": f"{type(exc).__name__}: {exc}"}

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(names)))) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def hosts(inv: Inventory, access: Any) -> dict[str, Any]:
    return per_host(inv, access, [h.name for h in inv.hosts],
                    lambda conn, name: host_facts(inv, conn, name))


def restic_argv(site: str, tier: str, *args: str) -> list[str]:
    """restic on the repository where it lives, as its owner (root on the web host, the
    site's storage user on A/B): the password file is named, never read here."""
    lay = BackupLayout(site)
    if tier == "local":
        head = ["env", "TZ=UTC", "restic", "--repo", lay.local_repo, "--password-file",
                lay.password]
    else:
        head = ["runuser", "-u", lay.storage_user, "--", "env", "TZ=UTC", "restic", "--repo",
                lay.storage_repo, "--password-file", lay.storage_password]
    return [*head, "--no-cache", "--no-lock", *args]


def site_tier(inv: Inventory, access: Any, site: str, tier: str) -> dict[str, Any]:
    host = inv.site(site).host if tier == "local" else inv.storage_host(tier).name
    conn = access.connection(inv.host(host))
    try:
        snaps = json.loads(out(conn, restic_argv(site, tier, "snapshots", "--json")) or "[]")
    except Exception as exc:  # noqa: BLE001
        return {"host": host, "error": str(exc)}
    d: dict[str, Any] = {"host": host, "snapshots": [
        {k: s.get(k) for k in ("id", "short_id", "time", "tags", "paths", "hostname")}
        for s in snaps]}
    if tier == "local":
        d["expect_paths"] = site_paths(site)[0]
        d["private_files"] = SiteLayout(site).private_files
        files = [s for s in snaps if "files" in (s.get("tags") or [])]
        if files:
            newest = max(files, key=lambda s: s["time"])
            listing = out(conn, restic_argv(site, tier, "ls", newest["id"]))
            d["listing"] = [x for x in listing.splitlines() if x.startswith("/")]
            d["listed"] = newest["id"][:8]
    return d


def backups(inv: Inventory, access: Any) -> dict[str, dict[str, Any]]:
    jobs = [(s.name, t) for s in inv.sites for t in ("local", "a", "b")]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda j: site_tier(inv, access, *j), jobs))
    data: dict[str, dict[str, Any]] = {s.name: {} for s in inv.sites}
    for (site, tier), r in zip(jobs, results, strict=True):
        data[site][tier] = r
    return data


def backup_status(inv: Inventory, access: Any) -> dict[str, Any]:
    from tasks.backup_status import collect

    return collect(inv, access)


def restores(inv: Inventory, access: Any) -> dict[str, list[dict[str, Any]]]:
    from backup.restore import RESTORES_FILE

    data = {}
    for s in inv.sites:
        path = f"{BackupLayout(s.name).state}/{RESTORES_FILE}"
        code, text, err = sudo(access.connection(inv.host(s.host)), ["cat", path])
        if code != 0 and "No such file" not in err:
            raise RuntimeError(f"{s.host}:{path}: {err.strip()[-200:]}")
        data[s.name] = [json.loads(x) for x in text.splitlines() if x.strip()] if code == 0 \
            else []
    return data


def monitoring(inv: Inventory, access: Any) -> dict[str, Any]:
    from tasks.monitor_tasks import prometheus, status_of

    conn = access.connection(inv.bastion)
    state = status_of(inv, lambda name: access.connection(inv.host(name)))
    groups = prometheus(conn, "/api/v1/rules").get("groups", [])
    state["rules"] = sorted({r["name"] for g in groups for r in g.get("rules", [])
                             if r.get("type") == "alerting"})
    return state


def incidents(inv: Inventory, access: Any) -> list[dict[str, Any]]:
    from tasks.incident_record import read_incidents

    return read_incidents(inv, access)


def updates(inv: Inventory, access: Any) -> list[dict[str, Any]]:
    """`fab update`'s log on ops (issue 15): one record per update run."""
    from roles.monitoring.incidents import UPDATE_LOG
    from tasks.incident_record import read_incidents

    return read_incidents(inv, access, UPDATE_LOG)


def ca_register(ca_dir: Path) -> dict[str, Any]:
    from sshtrust import ca

    key = Path(ca_dir) / "user_ca"
    if not key.with_name("user_ca.pub").is_file():
        raise FileNotFoundError(f"no user CA in {ca_dir} (the CA directory of this machine)")
    user = [{"serial": c.serial, "key_id": c.key_id, "principals": list(c.principals),
             "valid_after": c.valid_after, "valid_before": c.valid_before,
             "issued_at": c.issued_at} for c in ca.issued(key)]
    krl = Path(ca_dir) / "user_ca.krl"
    revoked: list[int] = []
    if krl.is_file():
        proc = localcmd.run(["ssh-keygen", "-Q", "-l", "-f", krl], check=False)
        revoked = sorted(serial_set(krl_serials(proc.stdout)))
    return {"user": user, "revoked_serials": revoked}


def probe_tls(name: str, ip: str, cafile: Path | None, timeout: float = 15) -> dict[str, Any]:
    """HTTPS to `name` on `ip` from this machine, as a visitor: certificate verified (the
    inventory's client CA in the lab, the system's otherwise), then GET / for its status."""
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    d: dict[str, Any] = {"name": name, "ip": ip}
    try:
        with socket.create_connection((ip, 443), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=name) as tls:
            cert = tls.getpeercert() or {}
            d["tls_version"] = tls.version()
            d["sans"] = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
            d["not_after"] = ssl.cert_time_to_seconds(cert["notAfter"])
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n"
                        "User-Agent: hosting-audit\r\n\r\n".encode())
            first = tls.recv(256).decode("latin-1").split("\r\n", 1)[0]
            d["http"] = int(first.split()[1]) if first.startswith("HTTP/") else 0
    except (OSError, ssl.SSLError, ValueError, KeyError, IndexError) as exc:
        d["error"] = f"{type(exc).__name__}: {exc}"
    return d


def tls(inv: Inventory) -> list[dict[str, Any]]:
    jobs = [(n, s.public_ip) for s in inv.sites for n in s.names]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda j: probe_tls(*j, inv.tls_client_ca), jobs))


def junit_cases(xml_text: str) -> list[dict[str, str]]:
    """pytest's JUnit XML: one {module, name, outcome, message} per test case."""
    cases = []
    for tc in ET.fromstring(xml_text).iter("testcase"):
        module = tc.get("classname", "").rsplit(".", 1)[-1]
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            el = tc.find(kind)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                message = el.get("message", "") or (el.text or "")[:300]
                break
        cases.append({"module": module, "name": tc.get("name", ""), "outcome": outcome,
                      "message": message})
    return cases


def verify(inv: Inventory, creds: Any, out_dir: Path) -> list[dict[str, str]]:
    """tests/verify (testinfra) as `fab verify` runs it, its results read from JUnit XML."""
    from tasks.verify import pytest_argv, write_access_files

    files = write_access_files(dict(inv.doc), creds, out_dir / "verify")
    junit = out_dir / "verify" / "junit.xml"
    junit.unlink(missing_ok=True)
    proc = localcmd.run([*pytest_argv(*files), f"--junitxml={junit}"], cwd=REPO, check=False,
                        timeout=1800)
    if not junit.is_file():
        raise RuntimeError(f"the verify suite wrote no results (pytest exit {proc.returncode}): "
                           f"{(proc.stdout + proc.stderr).strip()[-400:]}")
    return junit_cases(junit.read_text())


def stacks() -> dict[str, Any]:
    """The shape each Pulumi stack describes (model/): roles and sites, prod and preprod."""
    from model import load_stack
    from model.topology import plan_hosts

    shapes = {}
    for env in ("prod", "preprod"):
        stack = load_stack(REPO / f"Pulumi.{env}.yaml")
        roles: dict[str, int] = {}
        for h in plan_hosts(stack):
            roles[h.role] = roles.get(h.role, 0) + 1
        shapes[env] = {"roles": roles, "sites": len(stack.sites)}
    return shapes
