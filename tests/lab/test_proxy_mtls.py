"""The proxy -> web hop in the lab (issue 19 item 6, R-HOST-1, R-GDPR-2): HTTPS with the
proxy's client certificate from the internal CA (engine/tls_ca.py). Pages still go through the
proxy; a client without a certificate of that CA gets no page from a web host; no other host
reaches the web host's private port at all; X-Forwarded-For from anybody but the
authenticated proxy is ignored."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys

import pytest

from engine import tls_ca
from engine.inventory import Inventory
from lab.testing import LabSession, lab_env

from .test_web_support import REPO, WebTier, web_tier

pytestmark = pytest.mark.lab
SITES = ["villeparisis", "participation"]
DIR = "/etc/nginx/internal-tls"
FORGED = "192.0.2.77"


@pytest.fixture
def tier(lab: LabSession) -> WebTier:
    return web_tier(lab)


def _direct(tier: WebTier, site: str, *extra: str, path: str = "/whoami",
            host: str = "proxy") -> tuple[int, str]:
    """curl from `host` straight to the site's web host over the private HTTPS hop, checking
    the web host's certificate against the internal CA: (curl's exit code, output)."""
    web = tier.host_of(site)
    ip = tier.lab.host(web)["private_ip"]
    argv = ["curl", "-sS", "--max-time", "10", "--cacert", f"{DIR}/ca.pem",
            "--resolve", f"{web}:443:{ip}", "-H", f"X-Forwarded-For: {FORGED}",
            "-H", f"Host: {tier.site(site)['domain']}",  # Drupal's trusted host patterns
            "-w", "\\n%{http_code}", *extra, f"https://{web}{path}"]
    proc = tier.lab.sudo(host, shlex.join(argv), check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("site", SITES)
def test_page_through_the_proxy_answers_200_with_the_real_client_address(tier, site):
    status, body, _head = tier.curl(site, "/whoami")
    assert status == 200, body
    machine = tier.lab.inventory["admin_networks"][0].split("/")[0]
    assert json.loads(body)["remote_addr"] == machine


def test_web_host_private_listener_serves_the_proxys_certificate_and_trusts_its_header(tier):
    code, out = _direct(tier, "villeparisis", "--cert", f"{DIR}/client.pem",
                        "--key", f"{DIR}/client.key")
    assert code == 0 and out.endswith("\n200"), out
    assert json.loads(out.rsplit("\n", 1)[0])["remote_addr"] == FORGED


def test_web_host_refuses_a_client_without_certificate(tier):
    code, out = _direct(tier, "villeparisis")
    # nginx answers 400 "No required SSL certificate was sent" before any location (no PHP,
    # no header believed); the TLS 1.3 handshake itself ends after the client's Finished.
    assert "remote_addr" not in out
    assert code != 0 or out.endswith("\n400"), out


def test_web_host_refuses_a_certificate_from_another_ca(tier, tmp_path):
    other = tmp_path / "other-ca"
    tls_ca.create(other, "other")
    leaf = tls_ca.ensure(other, Inventory.from_doc(tier.lab.inventory)).client("proxy")
    for name, data in (("other.pem", leaf.cert_pem), ("other.key", leaf.key_pem)):
        tier.lab.root_exec("proxy", ["sh", "-c", f"umask 077; cat > /root/{name}"],
                           input=data.decode())
    try:
        code, out = _direct(tier, "villeparisis", "--cert", "/root/other.pem",
                            "--key", "/root/other.key")
    finally:
        tier.lab.root_exec("proxy", ["rm", "-f", "/root/other.pem", "/root/other.key"])
    assert "remote_addr" not in out
    assert code != 0 or out.endswith("\n400"), out


def test_web_host_private_port_closed_to_every_other_host(tier):
    web = tier.host_of("villeparisis")
    ip = tier.lab.host(web)["private_ip"]
    proc = tier.lab.run("web-participation",
                        f"curl -sS -k --max-time 5 -o /dev/null https://{ip}/", check=False)
    assert proc.returncode in (7, 28), proc.stderr  # refused or dropped by the firewall
    proc = tier.lab.run("web-participation",
                        f"curl -sS --max-time 5 -o /dev/null http://{ip}/", check=False)
    assert proc.returncode in (7, 28), proc.stderr  # no plain HTTP on the private address


def test_web_host_loopback_check_ignores_forwarded_for(tier):
    web = tier.host_of("villeparisis")
    domain = tier.site("villeparisis")["domain"]
    out = tier.lab.run(web, f"curl -sS --max-time 10 -H 'X-Forwarded-For: {FORGED}' "
                            f"-H 'Host: {domain}' http://127.0.0.1/whoami").stdout
    assert json.loads(out)["remote_addr"] == "127.0.0.1"


def test_proxy_hop_bench_measures_both_hops_without_errors_and_restores_the_configs(tier):
    # bench/proxy_hop_bench.py, side by side in this lab: the TLS hop against the plain one.
    sys.path.insert(0, str(REPO / "bench"))
    import proxy_hop_bench as bench

    def shas() -> dict[str, str]:
        return {h: hashlib.sha256(tier.lab.sudo(h, "cat /etc/nginx/nginx.conf; nft -s list "
                                                   "ruleset").stdout.encode()).hexdigest()
                for h in ("proxy", *(tier.host_of(s) for s in SITES))}

    before = shas()
    # Short by default; PROXY_HOP_BENCH="requests,rounds,paths" for a longer run.
    requests, rounds, *paths = os.environ.get("PROXY_HOP_BENCH", "400,3,/").split(",")
    args = argparse.Namespace(requests=int(requests), clients=8, rounds=int(rounds),
                              paths=",".join(paths))
    with lab_env(tier.lab):
        rows = bench.run(args)
    for r in rows:
        line = (f"{r['site']} {r['path']}: plain {r['plain']['rps']:.0f} req/s p50 "
                f"{r['plain']['p50_ms']:.1f} p95 {r['plain']['p95_ms']:.1f} ms; tls "
                f"{r['tls']['rps']:.0f} req/s p50 {r['tls']['p50_ms']:.1f} p95 "
                f"{r['tls']['p95_ms']:.1f} ms; ratio {r['ratio']:.3f}")
        print(line)
    assert len(rows) == len(SITES) * len(paths)
    assert all(r["plain"]["errors"] == r["tls"]["errors"] == 0 for r in rows), rows
    assert shas() == before
