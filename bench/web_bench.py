"""Requests per second and p95 latency of the fixture site's PHP pages, directly on the web
host and through the proxy, and their ratio (goal >= 0.9).

    LAB_PREFIX=... .venv/bin/python bench/web_bench.py [--requests 2000] [--clients 8]

Both runs start from the same place, the proxy host (the only machine allowed to reach a web
host, R-HOST-1): "direct" is HTTPS to the web host's private address with the proxy's own client
certificate (the web hosts admit no other client, issue 19); "proxied" is HTTPS to the site's
public IP, i.e. TLS termination, the proxy's rules and the private hop. The load generator is
curl (`--parallel`: kept-alive HTTP/1.1 connections direct, multiplexed HTTP/2 through the
proxy, as a browser), driven by a few lines of the proxy's python3 sent over SSH;
the proxy's own addresses are exempt from rate limiting. Native code for the client matters:
everything shares the machine's CPUs, and a Python client doing TLS was the bottleneck.
Needs a lab that `fab deploy` and `fab web.release` have run on (make lab).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOADGEN = r'''
import json, subprocess, sys, time
mode, ip, host, path, requests, clients, cert, key = sys.argv[1:9]
requests, clients = int(requests), int(clients)
url = f"https://{host}{path}" if mode == "https" else f"https://{ip}{path}"
conf = "".join(f'url = "{url}"\noutput = "/dev/null"\n' for _ in range(requests))
argv = ["curl", "-sS", "--parallel", "--parallel-max", str(clients), "-w",
        "%{http_code} %{time_total}\\n", "-K", "-"]
if mode == "https":
    # a benchmark from the proxy itself: TLS is graded elsewhere, so no CA file here
    argv += ["-k", "--http2", "--resolve", f"{host}:443:{ip}"]
else:
    # the web host admits the proxy's client certificate only (the private hop, issue 19)
    argv += ["-k", "--http1.1", "--cert", cert, "--key", key, "-H", f"Host: {host}"]
t0 = time.monotonic()
out = subprocess.run(argv, input=conf, capture_output=True, text=True).stdout
elapsed = time.monotonic() - t0
rows = [line.split() for line in out.splitlines() if line.strip()]
lat = sorted(float(t) for _c, t in rows)
n = len(lat)
errors = sum(1 for c, _t in rows if c != "200") + (requests - n)
print(json.dumps({"requests": n, "errors": errors, "rps": n / elapsed,
                  "p50_ms": 1000 * lat[n // 2] if n else None,
                  "p95_ms": 1000 * lat[int(n * 0.95)] if n else None}))
'''


def measure(conn: Any, mode: str, ip: str, host: str, path: str, requests: int,
            clients: int) -> dict[str, Any]:
    from roles.proxy.render import InternalPaths

    tls = InternalPaths()
    # The script as `python3 -c`, not on stdin: behind sudo (Debian's `use_pty`) the end of
    # the input reached python3 only minutes later. Root only for the direct run: the private
    # hop's client key is root's.
    sudo = "sudo -n " if mode == "direct" else ""
    res = conn.run(f"{sudo}python3 -c {shlex.quote(LOADGEN)} {mode} {ip} {host} "
                   f"{shlex.quote(path)} {requests} {clients} {tls.client_cert} {tls.client_key}",
                   in_stream=False, hide=True, timeout=600)
    return json.loads(res.stdout.strip().splitlines()[-1])


def interleaved(conn: Any, site: dict[str, Any], private: str, path: str, args: Any
                ) -> dict[str, Any]:
    """Direct and proxied runs alternated `rounds` times. The lab shares its CPUs with
    everything else on the machine, so each proxied run is compared with the direct run just
    before it (same load, seconds apart) and the median of those ratios is the result; the
    spread says how noisy the machine was."""
    measure(conn, "https", site["public_ip"], site["domain"], path, args.requests // 4,
            args.clients)  # warm up: OPcache, TLS session, upstream keep-alive
    pairs = []
    for _ in range(args.rounds):
        d = measure(conn, "direct", private, site["domain"], path, args.requests, args.clients)
        p = measure(conn, "https", site["public_ip"], site["domain"], path, args.requests,
                    args.clients)
        pairs.append((d, p, p["rps"] / d["rps"] if d["rps"] else 0.0))
    pairs.sort(key=lambda x: x[2])
    d, p, ratio = pairs[len(pairs) // 2]
    return {"direct": d, "proxied": p, "ratio": ratio,
            "ratios": [round(x[2], 2) for x in pairs],
            "errors": sum(x[0]["errors"] + x[1]["errors"] for x in pairs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="per run")
    ap.add_argument("--clients", type=int, default=8, help="concurrent requests")
    ap.add_argument("--rounds", type=int, default=5, help="direct/proxied pairs per page")
    ap.add_argument("--paths", default="/,/whoami",
                    help="fixture pages: / reads and writes the DB, /whoami is PHP only")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args(argv)

    from tasks.web_tasks import connected

    rows = []
    with connected("lab") as (inv, connect):
        proxy = connect(next(h.name for h in inv.hosts if h.role == "proxy"))
        for site in inv.doc["sites"]:
            private = inv.host(site["host"]).private_ip
            for path in args.paths.split(","):
                rows.append({"site": site["name"], "path": path,
                             **interleaved(proxy, site, private, path, args)})
    print(f"{args.clients} concurrent, {args.requests} requests per run, {args.rounds} "
          "direct/proxied pairs, from the proxy host (curl: HTTP/1.1 keep-alive TLS direct, "
          "HTTP/2 through the proxy); the median pair is shown, then every pair's ratio")
    print(f"{'site':<14} {'path':<8} {'direct req/s':>12} {'p95 ms':>7} {'proxied req/s':>13} "
          f"{'p95 ms':>7} {'ratio':>6} {'errors':>6}  ratios")
    for r in rows:
        d, p = r["direct"], r["proxied"]
        print(f"{r['site']:<14} {r['path']:<8} {d['rps']:>12.0f} {d['p95_ms']:>7.1f} "
              f"{p['rps']:>13.0f} {p['p95_ms']:>7.1f} {r['ratio']:>6.2f} {r['errors']:>6}  "
              f"{' '.join(f'{x:.2f}' for x in r['ratios'])}")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
