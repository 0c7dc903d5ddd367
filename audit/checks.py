"""The checks: collected facts -> evidence, pure functions (no SSH, no clock of their own).

Each check reads the facts its collector gathered (audit/collect.py) and returns one or more
Evidence items (pass / fail / manual). A collector that could not run (no monitoring on ops,
no restore recorded, a host unreachable) gives `manual` with the reason, never a crash.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import Any
from zoneinfo import ZoneInfo

from audit.report import Evidence, cut
from model.fields import region_location

# What the model allows a site's database account (onhost/web/hw_db.py SITE_PRIVILEGES; a
# unit test keeps the two equal) and the accounts MariaDB itself needs.
SITE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX",
                             "ALTER", "CREATE TEMPORARY TABLES", "LOCK TABLES"})
SYSTEM_ACCOUNTS = frozenset({("root", "localhost"), ("mariadb.sys", "localhost")})
STALE_HOURS = {"local": 26, "a": 26, "b": 192}  # the monitoring's BackupStale defaults
KEEP_DAYS_MAX = 365  # R-GDPR-3 / R-BKP-6
WEEKLY_DAYS_MAX = 35  # R-BKP-4
CERT_DAYS_MIN = 21  # the monitoring's CertExpiring default
LOG_PATH = re.compile(r"(^|/)var/log(/|$)|\.log$")
TIERS = ("local", "a", "b")


@dataclass(frozen=True)
class Fact:
    """What one collector gathered: `data` when ok, else the error that stopped it."""
    ok: bool
    data: Any = None
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Context:
    facts: dict[str, Fact]
    inv: Any  # engine.inventory.Inventory
    now: datetime

    def fact(self, name: str) -> Fact:
        return self.facts.get(name) or Fact(False, error=f"collector {name} did not run")


def unavailable(check: str, fact: Fact, what: str) -> Evidence:
    return Evidence(check, "manual", f"{what} could not be read: {cut(fact.error, 300)}")


def _time(text: str) -> datetime:
    from backup.snapshots import parse_restic_time

    return parse_restic_time(text)


def _age(t: datetime, now: datetime) -> str:
    hours = (now - t).total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


# ---- inventory and stacks -----------------------------------------------------------------

def sites_listed(ctx: Context) -> list[Evidence]:
    sites = [f"{s.name} ({s.domain} on {s.host}, {s.public_ip})" for s in ctx.inv.sites]
    return [Evidence("inventory.sites", "pass" if sites else "fail",
                     f"{len(sites)} site(s) in the inventory: " + ", ".join(sites))]


def regions(ctx: Context) -> list[Evidence]:
    seen = {h.name: h.region for h in ctx.inv.hosts}
    bad = {n: r for n, r in seen.items() if region_location(r) is None}
    if ctx.inv.source == "lab":
        return [Evidence("inventory.regions", "manual",
                         f"a lab on one machine: regions {sorted(set(seen.values()))} name no "
                         "datacenter")]
    return [Evidence("inventory.regions", "fail" if bad else "pass",
                     f"host regions {seen}" + (f"; not in France: {bad}" if bad else ""))]


def topology(ctx: Context) -> list[Evidence]:
    """One web VM per site, private only; one public IP per site, on the proxy only."""
    inv = ctx.inv
    problems = []
    webs = inv.by_role("web")
    for h in inv.hosts:
        if h.role not in ("proxy", "ops") and h.public_ip:
            problems.append(f"{h.name} ({h.role}) has a public address {h.public_ip}")
    for s in inv.sites:
        others = [x.name for x in inv.sites if x.host == s.host and x.name != s.name]
        if others:
            problems.append(f"{s.name} shares {s.host} with {', '.join(others)}")
    ips = [s.public_ip for s in inv.sites]
    if len(set(ips)) != len(ips):
        problems.append(f"site public IPs are not unique: {ips}")
    proxy_ips = set(inv.proxy.site_ips) if inv.by_role("proxy") else set()
    missing = [s.name for s in inv.sites if s.public_ip not in proxy_ips]
    if missing:
        problems.append(f"site IPs not on the proxy: {missing}")
    saw = (f"{len(webs)} web VM(s) for {len(inv.sites)} site(s), private only; site IPs "
           f"{', '.join(ips)} on the proxy")
    return [Evidence("inventory.topology", "fail" if problems else "pass",
                     "; ".join(problems) or saw)]


def stacks(ctx: Context) -> list[Evidence]:
    f = ctx.fact("stacks")
    if not f.ok:
        return [unavailable("stacks.topology", f, "the Pulumi stacks")]
    shapes = f.data  # env -> {"roles": {role: count}, "sites": n}
    envs = sorted(shapes)
    if not {"prod", "preprod"} <= set(envs):
        return [Evidence("stacks.topology", "fail", f"stacks found: {envs}; prod and preprod "
                         "are both required")]
    same = shapes["prod"] == shapes["preprod"]
    return [Evidence("stacks.topology", "pass" if same else "fail",
                     f"prod {shapes['prod']} / preprod {shapes['preprod']}"
                     + ("" if same else ": not the same topology"))]


# ---- TLS on the sites' public IPs ------------------------------------------------------------

def tls_sites(ctx: Context) -> list[Evidence]:
    f = ctx.fact("tls")
    if not f.ok:
        return [unavailable("tls.sites", f, "the sites over HTTPS")]
    bad = [f"{p['name']} on {p['ip']}: {p.get('error') or 'HTTP ' + str(p.get('http'))}"
           for p in f.data if p.get("error") or not 200 <= int(p.get("http") or 0) < 400]
    good = [f"{p['name']} HTTP {p['http']} ({p.get('tls_version')})" for p in f.data
            if not p.get("error") and 200 <= int(p.get("http") or 0) < 400]
    return [Evidence("tls.sites", "fail" if bad or not f.data else "pass",
                     "; ".join(bad) if bad else f"{len(good)} name(s) over verified HTTPS: "
                     + ", ".join(good))]


def tls_certificate(ctx: Context) -> list[Evidence]:
    f = ctx.fact("tls")
    if not f.ok:
        return [unavailable("tls.certificate", f, "the sites' certificates")]
    out = []
    for p in f.data:
        if p.get("error"):
            out.append(Evidence("tls.certificate", "fail", f"{p['name']}: {p['error']}"))
            continue
        left = (datetime.fromtimestamp(p["not_after"], UTC) - ctx.now).total_seconds() / 86400
        status = "pass" if left >= CERT_DAYS_MIN else "fail"
        out.append(Evidence("tls.certificate", status,
                            f"{p['name']}: certificate for {', '.join(p['sans'])}, "
                            f"{left:.0f} days left (at least {CERT_DAYS_MIN} wanted)"))
    return out or [Evidence("tls.certificate", "fail", "no site probed")]


# ---- the hosts ----------------------------------------------------------------------------

def _hosts(ctx: Context, check: str) -> tuple[dict[str, Any], list[Evidence]]:
    f = ctx.fact("hosts")
    if not f.ok:
        return {}, [unavailable(check, f, "the hosts")]
    out = []
    for name, h in f.data.items():
        if h.get("error"):
            out.append(Evidence(check, "manual", f"{name} unreachable: {cut(h['error'], 300)}"))
    return {n: h for n, h in f.data.items() if not h.get("error")}, out


def encrypted_private_files(ctx: Context) -> list[Evidence]:
    hosts, out = _hosts(ctx, "hosts.encrypted")
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
    hosts, out = _hosts(ctx, "hosts.firewall")
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
    hosts, out = _hosts(ctx, "hosts.sshd")
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
    hosts, out = _hosts(ctx, "db.grants")
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
    hosts, out = _hosts(ctx, "hosts.versions")
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
    hosts, out = _hosts(ctx, "hosts.updates")
    for name, h in hosts.items():
        u = h.get("updates", {})
        ok = u.get("periodic") == "1" and u.get("installed") and u.get("timer") == "enabled"
        out.append(Evidence("hosts.updates", "pass" if ok else "fail",
                            f"{name}: unattended-upgrades "
                            f"{'installed' if u.get('installed') else 'NOT installed'}, "
                            f"APT::Periodic::Unattended-Upgrade={u.get('periodic')!r}, "
                            f"apt-daily-upgrade.timer {u.get('timer')}"))
    return out


# ---- backups ------------------------------------------------------------------------------

def _snapshots(ctx: Context, check: str) -> tuple[dict[str, dict[str, Any]], list[Evidence]]:
    f = ctx.fact("backups")
    if not f.ok:
        return {}, [unavailable(check, f, "the backup repositories")]
    out = []
    for site, tiers in f.data.items():
        for tier, t in tiers.items():
            if t.get("error"):
                out.append(Evidence(check, "fail", f"{site} {tier}: repository not read: "
                                    f"{cut(t['error'], 300)}"))
    return f.data, out


def newest(ctx: Context, tier: str) -> list[Evidence]:
    check = f"backups.newest.{tier}"
    data, out = _snapshots(ctx, check)
    limit = timedelta(hours=STALE_HOURS[tier])
    for site, tiers in data.items():
        snaps = (tiers.get(tier) or {}).get("snapshots")
        if snaps is None:
            continue
        if not snaps:
            out.append(Evidence(check, "fail", f"{site} {tier}: no snapshot"))
            continue
        t = max(_time(s["time"]) for s in snaps)
        out.append(Evidence(check, "pass" if ctx.now - t <= limit else "fail",
                            f"{site} {tier}: newest snapshot {_age(t, ctx.now)} old "
                            f"(at most {STALE_HOURS[tier]} h), {len(snaps)} snapshot(s)"))
    return out


def oldest(ctx: Context) -> list[Evidence]:
    data, out = _snapshots(ctx, "backups.oldest")
    limit = timedelta(days=KEEP_DAYS_MAX)
    for site, tiers in data.items():
        for tier in TIERS:
            snaps = (tiers.get(tier) or {}).get("snapshots")
            if not snaps:
                continue
            old = min(snaps, key=lambda s: _time(s["time"]))
            t = _time(old["time"])
            out.append(Evidence("backups.oldest", "pass" if ctx.now - t <= limit else "fail",
                                f"{site} {tier}: oldest snapshot {_age(t, ctx.now)} old "
                                f"({old.get('short_id', old.get('id', '')[:8])}, at most "
                                f"{KEEP_DAYS_MAX} days)"))
    return out


def weekly(ctx: Context) -> list[Evidence]:
    data, out = _snapshots(ctx, "backups.weekly")
    limit = timedelta(days=WEEKLY_DAYS_MAX)
    for site, tiers in data.items():
        snaps = (tiers.get("b") or {}).get("snapshots")
        if snaps is None:
            continue
        weeklies = [s for s in snaps if "weekly" in (s.get("tags") or [])
                    and "monthly" not in (s.get("tags") or [])]
        late = [s for s in weeklies if ctx.now - _time(s["time"]) > limit]
        out.append(Evidence("backups.weekly", "fail" if late else "pass",
                            f"{site} b: {len(weeklies)} weekly snapshot(s) (not monthly), "
                            f"{len(late)} older than {WEEKLY_DAYS_MAX} days"))
    return out


def monthly(ctx: Context) -> list[Evidence]:
    """Each month on B: its monthly snapshot is its first (Europe/Paris calendar)."""
    data, out = _snapshots(ctx, "backups.monthly")
    tz = ZoneInfo(ctx.inv.backup_timezone)
    for site, tiers in data.items():
        snaps = (tiers.get("b") or {}).get("snapshots")
        if snaps is None:
            continue
        months: dict[str, list[dict[str, Any]]] = {}
        for s in snaps:
            if "safety" in (s.get("tags") or []):
                continue
            months.setdefault(f"{_time(s['time']).astimezone(tz):%Y-%m}", []).append(s)
        problems = []
        for month, items in sorted(months.items()):
            marked = [s for s in items if "monthly" in (s.get("tags") or [])]
            if not marked:
                problems.append(f"{month}: no monthly snapshot")
                continue
            first = min(_time(s["time"]) for s in marked)
            # The same run's two snapshots (database, files) are a minute or so apart.
            earlier = [s for s in items if "monthly" not in (s.get("tags") or [])
                       and _time(s["time"]) < first - timedelta(minutes=10)]
            if earlier:
                problems.append(f"{month}: {len(earlier)} snapshot(s) before the monthly one")
        out.append(Evidence("backups.monthly", "fail" if problems else "pass",
                            f"{site} b: " + ("; ".join(problems) or
                                             f"months {', '.join(sorted(months)) or 'none'}: "
                                             "each one's first backup is its monthly")))
    return out


def content(ctx: Context) -> list[Evidence]:
    """The newest local backup holds the dump, the files, the code and the host's config."""
    data, out = _snapshots(ctx, "backups.content")
    for site, tiers in data.items():
        local = tiers.get("local") or {}
        snaps = local.get("snapshots")
        if not snaps:
            continue
        kinds = {}
        for s in sorted(snaps, key=lambda s: _time(s["time"])):
            for k in ("db", "files"):
                if k in (s.get("tags") or []):
                    kinds[k] = s
        want = set(local.get("expect_paths", []))
        got = set((kinds.get("files") or {}).get("paths") or [])
        problems = []
        if "db" not in kinds:
            problems.append("no database snapshot")
        if "files" not in kinds:
            problems.append("no files snapshot")
        elif want - got:
            problems.append(f"files snapshot lacks {', '.join(sorted(want - got))}")
        listing = local.get("listing") or []
        private = local.get("private_files", "")
        if kinds.get("files") and private and not any(p == private or p.startswith(
                private + "/") for p in listing):
            problems.append(f"no private file ({private}) in the newest files snapshot")
        db_paths = (kinds.get("db") or {}).get("paths") or []
        out.append(Evidence("backups.content", "fail" if problems else "pass",
                            f"{site} local: " + ("; ".join(problems) or
                                                 f"database {', '.join(db_paths)} and files "
                                                 f"{', '.join(sorted(got))} "
                                                 f"({len(listing)} entries)")))
    return out


def no_logs(ctx: Context) -> list[Evidence]:
    data, out = _snapshots(ctx, "backups.no_logs")
    for site, tiers in data.items():
        local = tiers.get("local") or {}
        listing = local.get("listing")
        if listing is None:
            continue
        logs = [p for p in listing if LOG_PATH.search(p)]
        out.append(Evidence("backups.no_logs", "fail" if logs else "pass",
                            f"{site} local: {len(listing)} entries in the newest files "
                            f"snapshot, {len(logs)} log file(s)", cut("\n".join(logs[:20]))))
    return out


def offsite(ctx: Context) -> list[Evidence]:
    """Storage servers: each site's principal runs the append-only forced command (R-BKP-7)."""
    hosts, out = _hosts(ctx, "backups.offsite")
    for name, h in hosts.items():
        if ctx.inv.host(name).role != "storage":
            continue
        st = h.get("storage", {})
        problems = []
        for site in (s.name for s in ctx.inv.sites):
            line = st.get("principals", {}).get(site, "")
            if "backup.serve" not in line or f"--site {site}" not in line:
                problems.append(f"{site}: principal without the serve forced command "
                                f"({cut(line, 120) or 'no principals file'})")
        if not st.get("append_only"):
            problems.append("the served repository is not append-only (no --append-only in "
                            "backup/serve.py on the host)")
        if st.get("password_auth") != "no":
            problems.append(f"passwordauthentication {st.get('password_auth')!r}")
        out.append(Evidence("backups.offsite", "fail" if problems else "pass",
                            f"{name}: " + ("; ".join(problems) or
                                           "every site's certificate principal runs "
                                           "backup.serve (rclone serve restic --append-only) "
                                           "over SSH, certificates only")))
    return out


def repository_checks(ctx: Context) -> list[Evidence]:
    """The storage servers' last `restic check` (backup.rotate --check), from their status."""
    f = ctx.fact("backup_status")
    if not f.ok:
        return [unavailable("backups.check", f, "the storage servers' status")]
    out = []
    for site, parts in f.data.items():
        for tier in ("a", "b"):
            steps = ((parts.get(tier) or {}).get("last_run") or {}).get("steps") or {}
            step = steps.get("check")
            if step is None:
                out.append(Evidence("backups.check", "manual",
                                    f"{site} {tier}: no restic check recorded yet"))
            else:
                result = "ok" if step.get("ok") else f"FAILED: {step.get('error')}"
                out.append(Evidence("backups.check", "pass" if step.get("ok") else "fail",
                                    f"{site} {tier}: last restic check {result} "
                                    f"({step.get('seconds')} s)"))
    return out


# ---- restores, monitoring, incidents --------------------------------------------------------

def restores(ctx: Context) -> list[Evidence]:
    f = ctx.fact("restores")
    if not f.ok:
        return [unavailable("restores.last", f, "the restore records")]
    out = []
    for site, records in f.data.items():
        if not records:
            out.append(Evidence("restores.last", "manual",
                                f"{site}: no restore recorded on its web host yet"))
            continue
        last = records[-1]
        out.append(Evidence("restores.last", "pass" if last.get("result") == "ok" else "fail",
                            f"{site}: last restore {last.get('time')} from {last.get('from')} "
                            f"{last.get('result')} in {last.get('seconds')} s "
                            f"({len(records)} recorded)",
                            cut("; ".join(last.get("errors") or []))))
    return out


MONITORED = {"SiteDown": "availability", "SiteSlow": "response time",
             "CertExpiring": "TLS expiry", "BackupStale": "backup freshness",
             "DiskAlmostFull": "disk"}


def monitoring(ctx: Context) -> list[Evidence]:
    f = ctx.fact("monitoring")
    if not f.ok:
        return [unavailable("monitoring.state", f, "the monitoring on ops")]
    d = f.data
    missing = [f"{n} ({w})" for n, w in MONITORED.items() if n not in d.get("rules", [])]
    problems = []
    if missing:
        problems.append("no alert rule for " + ", ".join(missing))
    if d["down"]:
        problems.append(f"{len(d['down'])} target(s) down: " + ", ".join(
            f"{t['job']} {t['host'] or t['site'] or t['instance']}" for t in d["down"]))
    if d["firing"]:
        problems.append("alerts firing: " + ", ".join(f"{a['alert']} {a['where']}"
                                                      for a in d["firing"]))
    return [Evidence("monitoring.state", "fail" if problems else "pass",
                     "; ".join(problems) or f"{d['targets']} targets up, no alert firing, "
                     f"rules for {', '.join(MONITORED.values())}")]


def alert_rules(ctx: Context, names: tuple[str, ...], what: str) -> list[Evidence]:
    """The alert rules Prometheus on ops has loaded (not the files we render)."""
    check = "monitoring.rules"
    f = ctx.fact("monitoring")
    if not f.ok:
        return [unavailable(check, f, "the monitoring on ops")]
    missing = [n for n in names if n not in f.data.get("rules", [])]
    return [Evidence(check, "fail" if missing else "pass",
                     f"{what}: " + (f"no alert rule {', '.join(missing)} loaded" if missing
                                    else f"alert rule(s) {', '.join(names)} loaded on ops"))]


def incidents(ctx: Context) -> list[Evidence]:
    f = ctx.fact("incidents")
    if not f.ok:
        return [unavailable("incidents.record", f, "the incident record on ops")]
    recs = f.data
    kinds: dict[str, int] = {}
    for r in recs:
        kinds[r.get("kind", "?")] = kinds.get(r.get("kind", "?"), 0) + 1
    last = recs[-1] if recs else {}
    return [Evidence("incidents.record", "pass",
                     f"incident record on ops readable: {len(recs)} record(s) {kinds}"
                     + (f"; last {last.get('time') or last.get('started')} {last.get('kind')} "
                        f"{last.get('status')}" if last else ""))]


# ---- the verify suite ---------------------------------------------------------------------

def verify_cases(ctx: Context, module: str, only: tuple[str, ...] = ()) -> list[Evidence]:
    """The testinfra verify suite's results for one module (or some of its tests)."""
    check = f"verify:{module}" + (f"::{'|'.join(only)}" if only else "")
    f = ctx.fact("verify")
    if not f.ok:
        return [unavailable(check, f, "the verify suite (tests/verify)")]
    cases = [c for c in f.data if c["module"] == module
             and (not only or c["name"].split("[")[0] in only)]
    if not cases:
        return [Evidence(check, "manual", f"no test of {module} ran")]
    failed = [c for c in cases if c["outcome"] in ("failed", "error")]
    passed = sum(c["outcome"] == "passed" for c in cases)
    skipped = sum(c["outcome"] == "skipped" for c in cases)
    saw = f"tests/verify/{module}.py: {passed} passed, {len(failed)} failed, {skipped} skipped"
    excerpt = "\n".join(f"{c['name']}: {cut(c.get('message', ''), 200)}" for c in failed[:8])
    if failed:
        return [Evidence(check, "fail", saw, cut(excerpt))]
    return [Evidence(check, "pass" if passed else "manual", saw)]
