"""Checks on the inventory, the stacks and TLS on the sites' public IPs."""
from __future__ import annotations

from datetime import UTC, datetime

from audit.checks.common import (
    CERT_DAYS_MIN,
    Context,
    unavailable,
)
from audit.report import Evidence
from model.fields import region_location

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
