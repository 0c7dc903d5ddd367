"""The wildcard certificate by ACME DNS-01 in the lab, offline and for real (issue 14,
R-SCOPE-2, R-INC-4): certbot + certbot-dns-ovh (Debian's, unmodified) on ops against pebble,
the plugin reaching the fake OVH API (lab/fake_ovh.py: signatures and access rules checked)
under its real endpoint name, pebble resolving the TXT records the fake publishes; the deploy
hook pushes the certificate to the proxy over certificate-only SSH.

The module leaves the shared lab as it found it for the tests that follow: the proxy back on the
lab CA's certificate (the monitoring's blackbox trusts that CA), certbot's timer and the
stand-ins stopped, no failed unit left."""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from engine.access import resolve_ca_dir
from lab import acme as lab_acme
from lab.testing import LabSession, lab_env
from roles.acme import config as c
from tasks import acme_tasks as t
from tasks.deploy import run_deploy
from tasks.web_tasks import connected

from .test_web_support import WebTier, web_tier

pytestmark = pytest.mark.lab
INCIDENTS = "/var/log/hosting/incidents/incidents.jsonl"


@dataclass
class AcmeLab:
    lab: LabSession
    tier: WebTier
    inventory: Path
    acme: c.Acme
    timings: dict[str, float] = field(default_factory=dict)

    def ops(self, argv: list[str], **kw: Any) -> Any:
        return self.lab.root_exec("ops", argv, **kw)

    def run_ops(self, argv: list[str], what: str, timeout: int = 900) -> str:
        """A command on ops as root through the admin's verified SSH (the tasks' own path)."""
        with lab_env(self.lab), connected("lab", str(self.inventory)) as (_inv, connect):
            return t._run(connect("ops"), argv, what, timeout=timeout)

    def live_serial(self) -> int:
        pem = self.ops(["cat", f"{self.acme.live_dir}/cert.pem"]).stdout
        return x509.load_pem_x509_certificate(pem.encode()).serial_number


def prometheus(acme_lab: AcmeLab, query: str) -> list[dict[str, Any]]:
    out = acme_lab.ops(["curl", "-fsS", "--max-time", "20", "--get", "--data-urlencode",
                        f"query={query}", "http://127.0.0.1:9090/api/v1/query"]).stdout
    return json.loads(out)["data"]["result"]


def served(ip: str, name: str) -> x509.Certificate:
    """The certificate the proxy serves on `ip` for SNI `name` (not verified: compared)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, 443), timeout=10) as sock, \
            ctx.wrap_socket(sock, server_hostname=name) as tls_sock:
        der = tls_sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def install_pair(lab: LabSession, chain: bytes, key: bytes, cert_path: str,
                 key_path: str) -> dict[str, Any]:
    """The proxy's installer run as root with a pair (the module's way back to the lab CA)."""
    proc = lab.root_exec("proxy", ["python3", "-I", c.INSTALLER, "--cert", cert_path,
                                   "--key", key_path], check=False,
                         input=json.dumps({"fullchain": chain.decode(), "privkey": key.decode()}))
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def acme_lab(lab_session_: LabSession, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[AcmeLab]:
    lab = lab_session_
    lab.ensure_up()
    tier = web_tier(lab)
    original = lab.inventory
    doc = lab_acme.with_acme(original)
    path = tmp_path_factory.mktemp("acme") / "inventory.json"
    path.write_text(json.dumps(doc))
    state = AcmeLab(lab, tier, path, lab_acme_config(doc))

    def ops_root(argv: list[str], **kw: Any) -> Any:
        return lab.root_exec("ops", argv, **kw)

    try:
        t0 = time.monotonic()
        creds = lab_acme.setup(ops_root, lab.lab.tls_dir, doc)
        # The monitoring (blackbox) and curl trust pebble's root beside the lab CA meanwhile.
        bundle = lab_acme.write_client_bundle(lab.lab.tls_dir, lab_acme.pebble_root(ops_root))
        doc["tls"]["source"]["client_ca"] = str(bundle)
        path.write_text(json.dumps(doc))
        state.timings["stand-ins"] = time.monotonic() - t0
        t0 = time.monotonic()
        with lab_env(lab):
            report = run_deploy("lab", hosts="ops,proxy", inventory=str(path),
                                emit=lambda _m: None)
        assert report.ok, "\n".join(f"{r.host}: {r.error or [o.error for o in r.outcomes][:3]}"
                                     for r in report.results if not r.ok)
        state.timings["deploy ops+proxy"] = time.monotonic() - t0
        with lab_env(lab), connected("lab", str(path)) as (inv, connect):
            t.write_credentials(inv, connect, creds)
            t.setup_cert(inv, connect, resolve_ca_dir("lab", "", inv))
        t0 = time.monotonic()
        state.run_ops(t.issue_argv(state.acme), "certbot certonly")
        state.timings["issue"] = time.monotonic() - t0
        yield state
    finally:
        lab_acme.stop(ops_root)
        _back_to_lab_certificate(lab, original)
        # ACME off again: the blackbox's CA file back to the lab CA alone, the proxy's deploy
        # principal and sudo rule removed (roles/acme), the lab CA's pair installed.
        with lab_env(lab):
            assert run_deploy("lab", hosts="ops,proxy", emit=lambda _m: None).ok
        gone = lab.root_exec("proxy", ["ls", f"/etc/ssh/auth_principals/{c.PROXY_USER}"],
                             check=False)
        assert gone.returncode != 0, "the ACME deploy principal is still on the proxy"


def lab_acme_config(doc: dict[str, Any]) -> c.Acme:
    names = tuple(n for s in doc["sites"] for n in (s["domain"], *s["aliases"]))
    acme = c.from_doc(doc["acme"], names, doc["dns_zone"])
    assert acme is not None
    return acme


def _back_to_lab_certificate(lab: LabSession, doc: dict[str, Any]) -> None:
    source = Path(doc["tls"]["source"]["directory"])
    result = install_pair(lab, (source / "fullchain.pem").read_bytes(),
                          (source / "privkey.pem").read_bytes(), doc["tls"]["certificate"],
                          doc["tls"]["key"])
    assert result["ok"], result


def served_once_reloaded(ip: str, name: str, serial: int, within: float = 30) -> x509.Certificate:
    """What the proxy serves, once the hook's reload took: `nginx -s reload` returns before
    the new workers answer, and a connection made at once may still meet an old one."""
    deadline = time.monotonic() + within
    cert = served(ip, name)
    while cert.serial_number != serial and time.monotonic() < deadline:
        time.sleep(0.5)
        cert = served(ip, name)
    return cert


def test_issue_wildcard_served_for_both_sites_on_their_ips(acme_lab: AcmeLab):
    serial = acme_lab.live_serial()
    for site in acme_lab.tier.sites.values():
        for name in (site["domain"], *site["aliases"]):
            cert = served_once_reloaded(site["public_ip"], name, serial)
            assert cert.serial_number == serial, (site["name"], name)
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            assert set(sans.value.get_values_for_type(x509.DNSName)) == set(acme_lab.acme.names)
            assert "Pebble" in cert.issuer.rfc4514_string()
    last = json.loads(acme_lab.ops(["cat", c.STATUS]).stdout)
    assert last["ok"] and int(last["serial"], 16) == serial
    print(f"acme timings: {acme_lab.timings}")


def test_monitoring_sees_acme_certificate_valid_with_its_expiry(acme_lab: AcmeLab):
    """R-SCOPE-2 "monitored": the blackbox on ops verifies each site's ACME certificate and
    exports its own end date, what CertExpiring compares with cert_expiry_days."""
    pem = acme_lab.ops(["cat", f"{acme_lab.acme.live_dir}/cert.pem"]).stdout
    not_after = x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc.timestamp()
    sites = set(acme_lab.tier.sites)
    ok: dict[str, float] = {}
    for _ in range(90):
        ok = {}
        for r in prometheus(acme_lab, 'probe_ssl_earliest_cert_expiry{job="site",check="https"}'
                            ' and on(site) probe_success{job="site",check="https"} == 1'):
            ok[r["metric"]["site"]] = float(r["value"][1])
        if set(ok) == sites and all(abs(v - not_after) < 2 for v in ok.values()):
            break
        time.sleep(1)
    assert set(ok) == sites and all(abs(v - not_after) < 2 for v in ok.values()), ok


def test_forced_renewal_new_serial_zero_failed_requests(acme_lab: AcmeLab):
    old = acme_lab.live_serial()
    sites = list(acme_lab.tier.sites)
    done = threading.Event()
    results: list[int] = []

    def loop() -> None:
        deadline = time.monotonic() + 300  # bounded, whatever happens
        while not done.is_set() and time.monotonic() < deadline:
            for s in sites:
                results.append(acme_lab.tier.curl(s, "/", args=("-k",))[0])
    worker = threading.Thread(target=loop)
    worker.start()
    t0 = time.monotonic()
    try:
        time.sleep(1)
        acme_lab.run_ops(t.renew_argv(acme_lab.acme, force=True), "certbot renew --force")
        renew_seconds = time.monotonic() - t0
        time.sleep(1)
    finally:
        done.set()
        worker.join()
    new = acme_lab.live_serial()
    assert new != old
    site = acme_lab.tier.sites[sites[0]]
    assert served(site["public_ip"], site["domain"]).serial_number == new
    failed = [s for s in results if s != 200]
    print(f"renewal {renew_seconds:.1f} s, {len(results)} requests, {len(failed)} failed")
    assert len(results) >= 10 and failed == []


def test_renewal_dns_failure_keeps_old_certificate_and_records_incident(acme_lab: AcmeLab):
    old = acme_lab.live_serial()
    site = next(iter(acme_lab.tier.sites.values()))
    renewal = f"{c.CONFIG_DIR}/renewal/{acme_lab.acme.lineage}.conf"
    acme_lab.ops(["touch", lab_acme.FAIL_FILE])
    # certbot.service (the timer's) renews only what is due: make this certificate due.
    acme_lab.ops(["sed", "-i", "1a renew_before_expiry = 3650 days", renewal])
    before = len(acme_lab.ops(["sh", "-c", f"cat {INCIDENTS} 2>/dev/null || true"])
                 .stdout.splitlines())
    try:
        # The admin's forced renewal fails and says so...
        with pytest.raises(t.AcmeError, match="certbot renew --force failed"):
            acme_lab.run_ops(t.renew_argv(acme_lab.acme, force=True), "certbot renew --force")
        # ... and the timer's run fails, which records an incident (OnFailure=).
        proc = acme_lab.ops(["systemctl", "start", "certbot.service"], check=False,
                            timeout=600)
        assert proc.returncode != 0
        records: list[dict[str, Any]] = []
        for _ in range(60):
            lines = acme_lab.ops(["sh", "-c", f"cat {INCIDENTS} 2>/dev/null || true"]
                                 ).stdout.splitlines()[before:]
            records = [json.loads(x) for x in lines if "ACME renewal failed" in x]
            if records:
                break
            time.sleep(0.5)
        assert records and records[-1]["status"] == "failed"
        assert acme_lab.live_serial() == old
        assert served(site["public_ip"], site["domain"]).serial_number == old
    finally:
        acme_lab.ops(["sed", "-i", "/^renew_before_expiry = 3650 days$/d", renewal])
        acme_lab.ops(["rm", "-f", lab_acme.FAIL_FILE])
        acme_lab.ops(["systemctl", "reset-failed", "certbot.service",
                      "hosting-acme-failed.service"], check=False)
