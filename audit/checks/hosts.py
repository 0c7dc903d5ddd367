"""Checks on the hosts: private files, firewall openings, sshd, database grants, who can log
in where (R-INC-3), versions and pending updates."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any

from audit.checks.common import (
    SITE_PRIVILEGES,
    SYSTEM_ACCOUNTS,
    Context,
    host_facts,
    unavailable,
)
from audit.report import Evidence, cut

# ---- the hosts ----------------------------------------------------------------------------

def encrypted_private_files(ctx: Context) -> list[Evidence]:
    hosts, out = host_facts(ctx, "hosts.encrypted")
    for s in ctx.inv.sites:
        h = hosts.get(s.host)
        if h is None:
            continue
        mounts = h.get("gocryptfs", [])
        want = h.get("private_files", {}).get(s.name, "")
        ok = any(m.get("target") == want for m in mounts)
        out.append(Evidence("hosts.encrypted", "pass" if ok else "fail",
                            f"{s.host}: {want} is {'a' if ok else 'NOT a'} gocryptfs mount",
                            cut("\n".join(f"{m.get('source')} on {m.get('target')} "
                                          f"({m.get('fstype')})" for m in mounts))))
    return out


def _ports(value: Any) -> set[int]:
    if isinstance(value, int):
        return {value}
    if isinstance(value, dict) and "set" in value:
        return set().union(*(_ports(v) for v in value["set"])) if value["set"] else set()
    if isinstance(value, dict) and "range" in value:
        lo, hi = value["range"]
        return set(range(int(lo), int(hi) + 1))
    return set()


def _networks(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [ip_network(value, strict=False)]
    if isinstance(value, dict) and "prefix" in value:
        return [ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}", strict=False)]
    if isinstance(value, dict) and "set" in value:
        return [n for v in value["set"] for n in _networks(v)]
    if isinstance(value, dict) and "range" in value:  # an address range: its two ends
        return [ip_network(v, strict=False) for v in value["range"]]
    return []


def _match_token(left: Any, right: Any) -> str:
    """A match of an accept rule that opens no port, as a word: only established traffic,
    loopback and ICMP are harmless (anything else is reported as it is)."""
    ct = left.get("ct", {}) if isinstance(left, dict) else {}
    meta = left.get("meta", {}) if isinstance(left, dict) else {}
    payload = left.get("payload", {}) if isinstance(left, dict) else {}
    values = set(right if isinstance(right, list) else [right]) if isinstance(
        right, list | str) else set()
    if ct.get("key") == "state" and values and values <= {"established", "related"}:
        return "established"
    if meta.get("key") in ("iif", "iifname") and values == {"lo"}:
        return "loopback"
    if meta.get("key") == "l4proto" and values <= {"icmp", "ipv6-icmp"}:
        return "icmp"
    if payload.get("protocol") in ("icmp", "icmpv6") or (
            payload.get("field") in ("protocol", "nexthdr") and values <= {"icmp", "ipv6-icmp"}):
        return "icmp"
    return f"{left} {right}"


HARMLESS = {"established", "loopback", "icmp"}


def accepted_openings(ruleset: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(input chains whose policy is not drop, every accept rule of an input chain as
    {proto, ports, sources, other}) from `nft -j list ruleset`."""
    chains = {(c["family"], c["table"], c["name"]): c for c in
              (x["chain"] for x in ruleset if "chain" in x)}
    inputs = {k for k, c in chains.items() if c.get("hook") == "input"}
    loose = [f"{k[0]} {k[1]} {k[2]}: policy {chains[k].get('policy')}" for k in sorted(inputs)
             if chains[k].get("policy") != "drop"]
    rules = []
    for r in (x["rule"] for x in ruleset if "rule" in x):
        if (r["family"], r["table"], r["chain"]) not in inputs:
            continue
        exprs = r.get("expr", [])
        if not any("accept" in e for e in exprs):
            continue
        proto, ports, sources, other = "", set(), [], []
        for e in exprs:
            m = e.get("match")
            if not m:
                continue
            left = m.get("left", {})
            payload = left.get("payload", {}) if isinstance(left, dict) else {}
            if payload.get("field") == "dport":
                proto, ports = payload.get("protocol", ""), _ports(m.get("right"))
            elif payload.get("field") == "saddr":
                sources += _networks(m.get("right"))
            elif payload.get("field") == "daddr":
                pass  # narrower than the host: never more open
            else:
                other.append(_match_token(left, m.get("right")))
        rules.append({"proto": proto, "ports": sorted(ports), "sources": sources,
                      "other": other})
    return loose, rules


def opening_allowed(rule: dict[str, Any], expected: Iterable[Any]) -> bool:
    """An accept rule is within the model when a rule of the model (roles/base/firewall.py)
    opens at least those ports, of that protocol, to at least those sources."""
    if not rule["ports"]:  # no port: established traffic, loopback, ICMP only
        return bool(rule["other"]) and set(rule["other"]) <= HARMLESS
    for e in expected:
        if e.proto != rule["proto"] or not set(rule["ports"]) <= set(e.ports):
            continue
        if not e.sources:
            return True
        allowed = [ip_network(s, strict=False) for s in e.sources]
        if rule["sources"] and all(any(src.version == a.version and src.subnet_of(a)
                                       for a in allowed) for src in rule["sources"]):
            return True
    return False


def firewall(ctx: Context, expected: Callable[[Any], Iterable[Any]]) -> list[Evidence]:
    """Each host's live ruleset against the openings the model allows it."""
    hosts, out = host_facts(ctx, "hosts.firewall")
    for name, h in hosts.items():
        loose, rules = accepted_openings(h.get("nft", []))
        model = list(expected(ctx.inv.host(name)))
        extra = [r for r in rules if not opening_allowed(r, model)]
        opened = sorted({f"{r['proto']}/{p}" for r in rules for p in r["ports"]})
        if not h.get("nft"):
            out.append(Evidence("hosts.firewall", "fail", f"{name}: no nftables ruleset"))
            continue
        problems = loose + [f"{r['proto'] or 'any'} {r['ports'] or ''} from "
                            f"{[str(s) for s in r['sources']] or 'anywhere'} "
                            f"({', '.join(r['other'])})".replace(" ()", "") for r in extra]
        out.append(Evidence("hosts.firewall", "fail" if problems else "pass",
                            f"{name}: " + ("opened beyond the model: " + "; ".join(problems)
                                           if problems else f"input policy drop, open "
                                           f"{', '.join(opened)} as the model allows")))
    return out


def sshd_access(ctx: Context) -> list[Evidence]:
    """Certificates only, the inventory's user CA, the model's principals (R-GDPR-5, R-INC-3)."""
    hosts, out = host_facts(ctx, "hosts.sshd")
    ca = ctx.inv.user_ca_public_key.split()[:2]
    for name, h in hosts.items():
        t = h.get("sshd", {})
        host = ctx.inv.host(name)
        want = sorted(ctx.inv.principals_for(host.role))
        got = sorted(h.get("principals", []))
        problems = []
        for key, value in (("passwordauthentication", "no"), ("kbdinteractiveauthentication",
                                                               "no"),
                           ("authorizedkeysfile", "none"), ("permitrootlogin", "no")):
            if t.get(key) != value:
                problems.append(f"{key} {t.get(key)!r}, want {value!r}")
        if h.get("user_ca", "").split()[:2] != ca:
            problems.append("TrustedUserCAKeys is not the inventory's user CA")
        if not t.get("revokedkeys"):
            problems.append("no RevokedKeys (KRL)")
        if got != want:
            problems.append(f"principals {got}, the model allows {want}")
        out.append(Evidence(
            "hosts.sshd", "fail" if problems else "pass",
            f"{name}: " + ("; ".join(problems) if problems else
                           f"certificates of the user CA only, principals {', '.join(got)} "
                           f"for {ctx.inv.login_user}; KRL: {h.get('krl_summary', '?')}")))
    return out


def parse_grants(lines: Iterable[str]) -> dict[str, set[str]]:
    """{scope: privileges} from SHOW GRANTS lines (as onhost/web/hw_db.parse_grants)."""
    out: dict[str, set[str]] = {}
    for line in lines:
        m = re.match(r"GRANT (.+?) ON (\S+) TO ", line)
        if not m:
            continue
        privs = {p.strip() for p in m.group(1).split(",")}
        if " WITH GRANT OPTION" in line:
            privs.add("GRANT OPTION")
        out.setdefault(m.group(2).replace("`", ""), set()).update(privs)
    return out


def grant_problems(account: tuple[str, str], lines: list[str],
                   databases: dict[str, str]) -> list[str]:
    """What is broader than the model allows for one account (`databases`: site -> db)."""
    user, host = account
    if account in SYSTEM_ACCOUNTS:
        return []
    if user not in databases or host != "localhost":
        return [f"{user}@{host}: an account the model does not have"]
    db = databases[user]
    grants = parse_grants(lines)
    problems = []
    extra = grants.get("*.*", {"USAGE"}) - {"USAGE"}
    if extra:
        problems.append(f"{user}: global {', '.join(sorted(extra))}")
    mine = grants.get(f"{db}.*", set())
    if not mine <= SITE_PRIVILEGES:
        problems.append(f"{user} on {db}: {', '.join(sorted(mine - SITE_PRIVILEGES))} beyond "
                        "the model")
    others = sorted(s for s in grants if s not in ("*.*", f"{db}.*"))
    if others:
        problems.append(f"{user}: grants outside its database on {', '.join(others)}")
    return problems


def db_grants(ctx: Context) -> list[Evidence]:
    hosts, out = host_facts(ctx, "db.grants")
    databases = {s.name: s.database for s in ctx.inv.sites}
    for name, h in hosts.items():
        if ctx.inv.host(name).role != "web":
            continue
        grants = h.get("grants")
        if grants is None:
            out.append(Evidence("db.grants", "manual", f"{name}: MariaDB accounts not read: "
                                f"{h.get('grants_error', '')}"))
            continue
        problems = [p for acc in grants for p in
                    grant_problems(tuple(acc["account"]), acc["grants"], databases)]
        listing = "\n".join(f"{'@'.join(a['account'])}: " + " / ".join(a["grants"])
                            for a in grants)
        accounts = ", ".join("@".join(a["account"]) for a in grants)
        out.append(Evidence("db.grants", "fail" if problems else "pass",
                            f"{name}: " + ("; ".join(problems) if problems else
                                           f"accounts {accounts}; each site's on its own "
                                           "database only"), cut(listing)))
    return out


def ca_register(ctx: Context) -> list[Evidence]:
    """The user certificates the CA issued that are still valid (who can log in, R-INC-3)."""
    f = ctx.fact("ca")
    if not f.ok:
        return [unavailable("ca.issued", f, "the CA's register")]
    # People and CI (hosting:ssh.principals), each site's backup principal, valid on the
    # storage servers only behind its forced command (roles/backup/layout.py), and the ACME
    # deploy hook's, valid on the proxy only behind its installer, and only while ACME is on
    # (roles/acme: with it off, the proxy accepts that principal nowhere).
    known = set(ctx.inv.principals) | {backup_principal(s.name) for s in ctx.inv.sites} | \
        {acme_principal()}
    revoked = set(f.data.get("revoked_serials", []))
    live = [c for c in f.data.get("user", []) if c["valid_before"] > ctx.now.timestamp()
            and c["serial"] not in revoked]
    unknown = [c for c in live if set(c["principals"]) - known]
    lines = [f"serial {c['serial']} {c['key_id']} principals {','.join(c['principals'])} "
             f"until {datetime.fromtimestamp(c['valid_before'], UTC):%Y-%m-%d %H:%M}Z"
             for c in live]
    saw = (f"{len(f.data.get('user', []))} user certificate(s) issued, {len(live)} valid now, "
           f"{len(revoked)} serial(s) revoked in the KRL")
    if unknown:
        saw += "; principals the model does not know: " + ", ".join(
            f"serial {c['serial']}" for c in unknown)
    return [Evidence("ca.issued", "fail" if unknown else "pass", saw, cut("\n".join(lines)))]


def acme_principal() -> str:
    from roles.acme.config import PRINCIPAL

    return PRINCIPAL


def backup_principal(site: str) -> str:
    from roles.backup.layout import BackupLayout

    return BackupLayout(site).principal


def who_logs_in(ctx: Context) -> dict[str, Any]:
    """Who can log in where, as collected (the report's R-INC-3 section): per host, per valid
    certificate, per database account."""
    out: dict[str, Any] = {"hosts": {}, "databases": {}}
    hosts = ctx.fact("hosts")
    for name, h in (hosts.data or {}).items() if hosts.ok else ():
        role = ctx.inv.host(name).role
        if h.get("error"):
            out["hosts"][name] = {"role": role, "error": h["error"]}
            continue
        ca = h.get("user_ca", "").split()
        out["hosts"][name] = {"role": role, "login_user": ctx.inv.login_user,
                              "principals": h.get("principals", []),
                              "user_ca": " ".join(ca[2:3]) or " ".join(ca[:1]) or "none",
                              "krl_serials": h.get("krl_serials", [])}
        if role == "storage":
            for site, line in (h.get("storage") or {}).get("principals", {}).items():
                if line:
                    out["hosts"][name]["principals"] = [
                        *out["hosts"][name]["principals"],
                        f"{backup_principal(site)} (backup of {site}, forced command)"]
        if h.get("grants") is not None:
            out["databases"][name] = [{"account": "@".join(a["account"]),
                                       "grants": a["grants"]} for a in h["grants"]]
    ca_fact = ctx.fact("ca")
    if ca_fact.ok:
        revoked = set(ca_fact.data.get("revoked_serials", []))
        out["certificates"] = [
            {"serial": c["serial"], "key_id": c["key_id"], "principals": c["principals"],
             "until": f"{datetime.fromtimestamp(c['valid_before'], UTC):%Y-%m-%d %H:%M}"}
            for c in ca_fact.data.get("user", [])
            if c["valid_before"] > ctx.now.timestamp() and c["serial"] not in revoked]
    return out


def versions(ctx: Context) -> list[Evidence]:
    hosts, out = host_facts(ctx, "hosts.versions")
    for name, h in hosts.items():
        problems = []
        debian = h.get("debian_version", "")
        if not debian.startswith("13"):
            problems.append(f"Debian {debian or '?'} (13 wanted)")
        seen = f"Debian {debian}"
        if ctx.inv.host(name).role == "web":
            php, db = h.get("php_version", ""), h.get("mariadb_version", "")
            if not php.startswith("8.4"):
                problems.append(f"PHP {php or 'absent'} (8.4 wanted)")
            if "MariaDB" not in db:
                problems.append(f"database {db or 'absent'} (MariaDB wanted)")
            seen += f", PHP {php}, {db}"
        out.append(Evidence("hosts.versions", "fail" if problems else "pass",
                            f"{name}: " + ("; ".join(problems) or seen)))
    return out


def updates(ctx: Context) -> list[Evidence]:
    hosts, out = host_facts(ctx, "hosts.updates")
    for name, h in hosts.items():
        u = h.get("updates", {})
        ok = u.get("periodic") == "1" and u.get("installed") and u.get("timer") == "enabled"
        out.append(Evidence("hosts.updates", "pass" if ok else "fail",
                            f"{name}: unattended-upgrades "
                            f"{'installed' if u.get('installed') else 'NOT installed'}, "
                            f"APT::Periodic::Unattended-Upgrade={u.get('periodic')!r}, "
                            f"apt-daily-upgrade.timer {u.get('timer')}"))
    return out
