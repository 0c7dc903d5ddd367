"""The proxied page's speed with the proxy -> web hop in TLS with a client certificate (issue 19
item 6) against the same hop in plain HTTP, side by side in one lab: requests/s, p50, p95,
and the CPU each server unit spends per request (proxy nginx, web nginx, PHP-FPM, read from
their cgroups), from which the hop's own cost: µs per request and its share of the page's
server CPU. Requests/s on a shared 2-CPU machine move by ~10 % from run to run; CPU per
request does not, which is why the verdict on the hop reads the CPU figures.

    LAB_PREFIX=... .venv/bin/python bench/proxy_hop_bench.py [--requests 1000] [--rounds 5]

Both variants run on the same hosts, seconds apart, alternated `rounds` times (the machine's
load varies): "tls" is what `fab deploy` installs; "plain" is the same configurations with one
change, the hop (the web host's private server block also listens on PLAIN_PORT without TLS,
the proxy's upstreams point there with `proxy_pass http://`), i.e. the configuration before
the hop had TLS. The load is HTTPS + HTTP/2 to the site's public IP from the proxy host (curl,
bench/web_bench.py's load generator), exempt from rate limiting. Everything the bench changes
(both nginx.conf files, one nftables rule) is saved first and put back at the end, also on
failure; a following `fab deploy` then changes nothing. Needs a lab that `fab deploy` and
`fab web.release` have run on (make lab).
"""
from __future__ import annotations

import argparse
import base64
import json
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_bench import measure  # noqa: E402

CONF = "/etc/nginx/nginx.conf"
SAVED = "/root/nginx.conf.bench-saved"
PLAIN_PORT = 8080


def sudo(conn: Any, command: str) -> str:
    res = conn.run("sudo -n sh -c " + shlex.quote(command), hide=True, in_stream=False,
                   timeout=120)
    return res.stdout


def plain_web(conf: str, private: str) -> str:
    """The web host's configuration plus a plain-HTTP listener in the private server block."""
    listen = f"listen {private}:443 ssl default_server;"
    if listen not in conf:
        raise SystemExit(f"web host: no `{listen}` in the deployed {CONF}: deploy first")
    return conf.replace(listen, f"{listen}\n        listen {private}:{PLAIN_PORT};", 1)


def plain_proxy(conf: str, backends: dict[str, str]) -> str:
    """The proxy's configuration with every upstream on the plain listener."""
    for private in backends.values():
        old = f"server {private}:443 "
        if old not in conf:
            raise SystemExit(f"proxy: no `{old}` in the deployed {CONF}: deploy first")
        conf = conf.replace(old, f"server {private}:{PLAIN_PORT} ")
    return conf.replace("proxy_pass https://", "proxy_pass http://")


def install(conn: Any, text: str) -> None:
    """Write nginx.conf, `nginx -t`, reload (raises when any step fails)."""
    tmp = "/root/nginx.conf.bench"
    data = base64.b64encode(text.encode()).decode()  # a configuration: nothing secret in it
    sudo(conn, f"echo {data} | base64 -d > {tmp} && nginx -t -q -c {tmp} && "
               f"install -m 0644 {tmp} {CONF} && rm -f {tmp} && systemctl reload nginx && "
               "sleep 1")


UNITS = {"proxy": ("nginx.service",), "web": ("nginx.service", "php8.4-fpm.service")}


def cpu_usec(conn: Any, role: str) -> dict[str, int]:
    """CPU time (µs) each unit of `role` has used so far, from its cgroup: unlike requests/s,
    it does not depend on what else the machine's CPUs are doing during the run."""
    units = UNITS[role]
    out = sudo(conn, " ; ".join(f"awk '$1==\"usage_usec\"{{print $2}}' "
                                f"/sys/fs/cgroup/system.slice/{u}/cpu.stat" for u in units))
    return {f"{role}:{u.split('.')[0]}": int(v) for u, v in zip(units, out.split(), strict=True)}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tasks.web_tasks import connected

    rows: list[dict[str, Any]] = []
    with connected("lab") as (inv, connect):
        proxy_host = next(h for h in inv.hosts if h.role == "proxy")
        proxy = connect(proxy_host.name)
        webs = {s.name: (s.host, inv.host(s.host).private_ip) for s in inv.sites}
        web_conns = {name: connect(host) for name, (host, _ip) in webs.items()}
        saved = {"proxy": sudo(proxy, f"cat {CONF}")}
        for name, c in web_conns.items():
            saved[name] = sudo(c, f"cat {CONF}")
        try:
            for name, c in web_conns.items():
                sudo(c, f"cp -p {CONF} {SAVED} && nft insert rule inet filter input ip saddr "
                        f"{proxy_host.private_ip} tcp dport {PLAIN_PORT} accept")
                install(c, plain_web(saved[name], webs[name][1]))
            tls_conf = saved["proxy"]
            plain_conf = plain_proxy(tls_conf, {n: ip for n, (_h, ip) in webs.items()})
            for site in inv.doc["sites"]:
                for path in args.paths.split(","):
                    rows.append(compare(proxy, web_conns[site["name"]], site, path, tls_conf,
                                        plain_conf, args))
        finally:
            problems = []
            for what, c in (("proxy", proxy), *web_conns.items()):
                try:
                    install(c, saved[what])
                except Exception as exc:  # noqa: BLE001 - every host is restored, then reported
                    problems.append(f"{what}: {exc}")
            for name, c in web_conns.items():
                try:  # the deployed ruleset, as the firewall role's handler applies it
                    sudo(c, "nft -f /etc/nftables.conf && rm -f " + SAVED)
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{name} nftables: {exc}")
            if problems:
                print("RESTORE FAILED (run `fab deploy --env lab`): " + "; ".join(problems),
                      file=sys.stderr)
    return rows


def compare(proxy: Any, web: Any, site: dict[str, Any], path: str, tls_conf: str,
            plain_conf: str, args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "tls": []}

    def cpu() -> dict[str, int]:
        return {**cpu_usec(proxy, "proxy"), **cpu_usec(web, "web")}

    for i in range(args.rounds):
        order = ("plain", "tls") if i % 2 == 0 else ("tls", "plain")
        for variant in order:
            install(proxy, plain_conf if variant == "plain" else tls_conf)
            measure(proxy, "https", site["public_ip"], site["domain"], path,
                    args.requests // 5, args.clients)  # warm-up: pool, sessions, OPcache
            before = cpu()
            r = measure(proxy, "https", site["public_ip"], site["domain"], path,
                        args.requests, args.clients)
            after = cpu()
            for unit, used in after.items():  # CPU per request, µs, of each server unit
                r[unit] = (used - before[unit]) / max(r["requests"], 1)
            r["hop_us"] = r["proxy:nginx"] + r["web:nginx"]
            r["server_us"] = r["hop_us"] + r["web:php8"]
            runs[variant].append(r)
    out: dict[str, Any] = {"site": site["name"], "path": path}
    for variant, rs in runs.items():
        out[variant] = {k: statistics.median(r[k] for r in rs)
                        for k in ("rps", "p50_ms", "p95_ms", "proxy:nginx", "web:nginx",
                                  "web:php8", "hop_us", "server_us")}
        out[variant]["errors"] = sum(r["errors"] for r in rs)
    out["ratio"] = out["tls"]["rps"] / out["plain"]["rps"] if out["plain"]["rps"] else 0.0
    # What the TLS hop costs the servers per request, and as a share of the page's server CPU
    # (both nginx + PHP-FPM with the plain hop): the load-independent figure.
    out["hop_cost_us"] = out["tls"]["hop_us"] - out["plain"]["hop_us"]
    out["hop_share"] = (out["hop_cost_us"] / out["plain"]["server_us"]
                        if out["plain"]["server_us"] else 0.0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="per run")
    ap.add_argument("--clients", type=int, default=8, help="concurrent requests")
    ap.add_argument("--rounds", type=int, default=5, help="plain/tls pairs, order alternated")
    ap.add_argument("--paths", default="/whoami,/,/render?ms=5&kb=40",
                    help="fixture pages: /whoami is PHP only, / reads and writes the DB, "
                         "/render stands in for a Drupal page (CPU ms, KiB of HTML)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args(argv)
    rows = run(args)
    print(f"{args.clients} concurrent, {args.requests} requests per run, {args.rounds} rounds "
          "per variant (medians), HTTPS+HTTP/2 through the proxy from the proxy host")
    print("CPU µs per request, from the units' cgroups: proxy nginx, web nginx, PHP-FPM")
    print(f"{'site':<14} {'path':<20} {'hop':<6} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'errors':>6} {'proxy':>7} {'web':>7} {'php':>7}")
    for r in rows:
        for variant in ("plain", "tls"):
            v = r[variant]
            print(f"{r['site']:<14} {r['path']:<20} {variant:<6} {v['rps']:>7.0f} "
                  f"{v['p50_ms']:>7.1f} {v['p95_ms']:>7.1f} {v['errors']:>6} "
                  f"{v['proxy:nginx']:>7.0f} {v['web:nginx']:>7.0f} {v['web:php8']:>7.0f}")
        print(f"{'':<14} {'':<20} tls/plain req/s {r['ratio']:.3f}; the TLS hop adds "
              f"{r['hop_cost_us']:.0f} µs of nginx CPU per request, "
              f"{100 * r['hop_share']:.1f} % of the page's server CPU")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0 if all(r["plain"]["errors"] + r["tls"]["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
