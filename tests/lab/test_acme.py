"""The wildcard certificate by ACME DNS-01 in the lab, offline and for real (issue 14,
R-SCOPE-2, R-INC-4): certbot + certbot-dns-ovh (Debian's, unmodified) on ops against pebble,
the plugin reaching the fake OVH API (lab/fake_ovh.py: signatures and access rules checked)
under its real endpoint name, pebble resolving the TXT records the fake publishes; the deploy
hook pushes the certificate to the proxy over certificate-only SSH.

Two certificate sets, so two lineages (the config's `acme.certificates`): the second site's
name alone first, then the zone's apex and wildcard; the proxy serves each site the first set
covering its names, so each site has its own lineage and serial. The installer reports success
only once nginx serves the new serial on the site IPs: every check below is made at once,
with no wait of its own.

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
from engine.inventory import Inventory
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

    def live_cert(self, cert: c.CertSet) -> x509.Certificate:
        pem = self.ops(["cat", f"{cert.live_dir}/cert.pem"]).stdout
        return x509.load_pem_x509_certificate(pem.encode())

    def live_serials(self) -> dict[str, int]:
        return {x.lineage: self.live_cert(x).serial_number for x in self.acme.certificates}

    def site_set(self, site: str) -> c.CertSet:
        return self.served_sets[site]

    @property
    def served_sets(self) -> dict[str, c.CertSet]:
        return c.site_certificates(self.acme, Inventory.from_doc(json.loads(
            self.inventory.read_text())))


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


@pytest.fixture(scope="module")
def acme_lab(lab_session_: LabSession, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[AcmeLab]:
    lab = lab_session_
    lab.ensure_up()
    tier = web_tier(lab)
    original = lab.inventory
    zone = original["dns_zone"]
    doc = lab_acme.with_acme(original, [[original["sites"][1]["domain"]],
                                        [zone, f"*.{zone}"]])
    path = tmp_path_factory.mktemp("acme") / "inventory.json"
    path.write_text(json.dumps(doc))
    state = AcmeLab(lab, tier, path, lab_acme_config(doc))
    assert set(state.served_sets) == {s["name"] for s in original["sites"]}
    assert len({x.lineage for x in state.served_sets.values()}) == 2

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
        t.issue_all(state.acme, lambda argv, what: state.run_ops(argv, what))
        state.timings["issue (2 lineages)"] = time.monotonic() - t0
        yield state
    finally:
        lab_acme.stop(ops_root)
        # ACME off again: the blackbox's CA file back to the lab CA alone, the proxy's deploy
        # principal and sudo rule removed (roles/acme), nginx back on the lab CA's pair for
        # every site (ACME never wrote over it: each lineage has its own files).
        with lab_env(lab):
            assert run_deploy("lab", hosts="ops,proxy", emit=lambda _m: None).ok
        gone = lab.root_exec("proxy", ["ls", f"/etc/ssh/auth_principals/{c.PROXY_USER}"],
                             check=False)
        assert gone.returncode != 0, "the ACME deploy principal is still on the proxy"
        for site in original["sites"]:
            cert = served_eventually(site["public_ip"], site["domain"],
                                     lambda x: "Pebble" not in x.issuer.rfc4514_string())
            assert "Pebble" not in cert.issuer.rfc4514_string(), site["name"]


def lab_acme_config(doc: dict[str, Any]) -> c.Acme:
    names = tuple(n for s in doc["sites"] for n in (s["domain"], *s["aliases"]))
    acme = c.from_doc(doc["acme"], names, doc["dns_zone"])
    assert acme is not None
    return acme


def served_eventually(ip: str, name: str, good: Any, within: float = 30) -> x509.Certificate:
    """For the module's teardown only (a `fab deploy` reload, not the installer's)."""
    deadline = time.monotonic() + within
    cert = served(ip, name)
    while not good(cert) and time.monotonic() < deadline:
        time.sleep(0.5)
        cert = served(ip, name)
    return cert


def assert_each_site_serves_its_lineage(acme_lab: AcmeLab, serials: dict[str, int]) -> None:
    """At once, no wait: the installer returned only after nginx served the new serial."""
    for name_, site in acme_lab.tier.sites.items():
        cert_set = acme_lab.site_set(name_)
        for name in (site["domain"], *site["aliases"]):
            cert = served(site["public_ip"], name)
            assert cert.serial_number == serials[cert_set.lineage], (name_, name)
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            assert set(sans.value.get_values_for_type(x509.DNSName)) == set(cert_set.names)
            assert "Pebble" in cert.issuer.rfc4514_string()


def test_issue_two_sets_each_site_served_its_lineage_on_its_ip(acme_lab: AcmeLab):
    serials = acme_lab.live_serials()
    assert len(set(serials.values())) == 2  # one lineage, one certificate per set
    assert_each_site_serves_its_lineage(acme_lab, serials)
    last = json.loads(acme_lab.ops(["cat", c.STATUS]).stdout)
    assert last["ok"] and int(last["serial"], 16) == serials[last["lineage"]]
    assert last["served_after"] is not None
    print(f"acme timings: {acme_lab.timings}; nginx served the last one "
          f"{last['served_after']} s after its reload")


def test_monitoring_sees_acme_certificate_valid_with_its_expiry(acme_lab: AcmeLab):
    """R-SCOPE-2 "monitored": the blackbox on ops verifies each site's ACME certificate and
    exports its own end date, what CertExpiring compares with cert_expiry_days."""
    want = {site: acme_lab.live_cert(acme_lab.site_set(site)).not_valid_after_utc.timestamp()
            for site in acme_lab.tier.sites}
    ok: dict[str, float] = {}
    for _ in range(90):
        ok = {}
        for r in prometheus(acme_lab, 'probe_ssl_earliest_cert_expiry{job="site",check="https"}'
                            ' and on(site) probe_success{job="site",check="https"} == 1'):
            ok[r["metric"]["site"]] = float(r["value"][1])
        if set(ok) == set(want) and all(abs(ok[s] - want[s]) < 2 for s in want):
            break
        time.sleep(1)
    assert set(ok) == set(want) and all(abs(ok[s] - want[s]) < 2 for s in want), (ok, want)


def test_forced_renewal_new_serials_zero_failed_requests(acme_lab: AcmeLab):
    old = acme_lab.live_serials()
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
    new = acme_lab.live_serials()
    assert set(new) == set(old) and all(new[x] != old[x] for x in old)  # every lineage
    assert_each_site_serves_its_lineage(acme_lab, new)
    failed = [s for s in results if s != 200]
    print(f"renewal {renew_seconds:.1f} s, {len(results)} requests, {len(failed)} failed")
    assert len(results) >= 10 and failed == []


def test_renewal_dns_failure_keeps_old_certificate_and_records_incident(acme_lab: AcmeLab):
    old = acme_lab.live_serials()
    renewals = [f"{c.CONFIG_DIR}/renewal/{x}.conf" for x in old]
    acme_lab.ops(["touch", lab_acme.FAIL_FILE])
    # certbot.service (the timer's) renews only what is due: make these certificates due.
    for renewal in renewals:
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
        assert acme_lab.live_serials() == old
        assert_each_site_serves_its_lineage(acme_lab, old)
    finally:
        for renewal in renewals:
            acme_lab.ops(["sed", "-i", "/^renew_before_expiry = 3650 days$/d", renewal])
        acme_lab.ops(["rm", "-f", lab_acme.FAIL_FILE])
        acme_lab.ops(["systemctl", "reset-failed", "certbot.service",
                      "hosting-acme-failed.service"], check=False)
