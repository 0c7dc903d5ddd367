"""The lab's stand-ins for the outside world of ACME DNS-01 (issue 14): an ACME server, the OVH
API and the DNS the ACME server asks, all offline, on the lab's ops host (where certbot runs).

- pebble (Debian package) on 127.0.0.1:14000, its TLS certificate from the lab CA (lab/tls.py)
  for `localhost`; PEBBLE_AUTHZREUSE=0 (every order validates again), PEBBLE_VA_NOSLEEP=1;
  its DNS resolution pointed at pebble-challtestsrv (127.0.0.1:8053), whose TXT records the
  fake OVH API sets through its management API (127.0.0.1:8055) when the zone is refreshed;
- lab/fake_ovh.py on 127.0.0.1:443 under OVH's real endpoint name: `eu.api.ovh.com` resolves
  to 127.0.0.1 in ops' /etc/hosts, its certificate comes from the lab CA, and the lab CA is
  trusted in ops' system store (where Debian's python3 looks) only in the lab; the DNS-01
  hooks (onhost/acme/ovh_dns.py) run unchanged, as on OVH. It checks each request's signature
  and enforces the access rules `fab acme.credentials` requests (roles.acme.config.access_rules);
- the credentials (random application key/secret and consumer key) exist only in the fake's
  0600 state file and in certbot's 0600 credentials file on ops; never in argv or output.

The switch: `LAB_ACME=1` (default off) makes `python -m lab inventory` keep the stack's `acme`
section (its certificate sets: one lineage each) with pebble's directory in place of Let's
Encrypt's (acme_section, through the model's own inventory code), so `fab deploy --env lab`
converges certbot on ops and the installer on the proxy;
`setup(...)` starts the stand-ins (tests/lab/test_acme.py; `python -m lab.acme_cli` in
scripts/lab-full with LAB_ACME=1).
With it off, the proxy serves the lab CA's certificate as before.
"""
from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lab import tls
from model.inventory import acme_doc
from model.types import Acme, AcmeCertificate
from roles.acme.config import access_rules

SWITCH_ENV = "LAB_ACME"
DIR = "/etc/hosting-lab/acme"  # on ops: the stand-ins' files (never a role's)
PEBBLE = "127.0.0.1:14000"
PEBBLE_MANAGEMENT = "127.0.0.1:15000"
DIRECTORY = f"https://localhost:{PEBBLE.rsplit(':', 1)[1]}/dir"
CHALLTESTSRV_DNS = "127.0.0.1:8053"
CHALLTESTSRV_MANAGEMENT = "127.0.0.1:8055"
FAKE_OVH = "127.0.0.1:443"
OVH_NAME = "eu.api.ovh.com"
FAIL_FILE = f"{DIR}/ovh-dns-down"  # present: the fake OVH API refuses record creation
UNITS = ("hosting-lab-challtestsrv.service", "hosting-lab-pebble.service",
         "hosting-lab-fake-ovh.service")
SOURCE = Path(__file__).resolve().parent / "fake_ovh.py"

Exec = Callable[..., subprocess.CompletedProcess]


def enabled(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get(SWITCH_ENV, "") in ("1", "yes", "true")


def acme_section(doc: Mapping[str, Any],
                 certificates: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    """The lab inventory's `acme` section: the stack's own `hosting:acme` as the model put it
    in the inventory (its certificate sets, key type, curve), with pebble's directory, a 1 s
    propagation wait and the lab's renewal settings; the model's defaults when the stack has
    none. `certificates` (lists of names) replaces the sets (tests/lab/test_acme.py)."""
    stack = dict(doc.get("acme") or {})
    settings = Acme(enabled=True, directory=DIRECTORY,
                    email=str(stack.get("email") or f"hostmaster@{doc['dns_zone']}"),
                    certificates=tuple(AcmeCertificate(tuple(c["names"]), c.get("name", ""))
                                       for c in stack.get("certificates", ())),
                    key_type=str(stack.get("key_type", "ecdsa")),
                    elliptic_curve=str(stack.get("elliptic_curve", "secp256r1")),
                    rsa_key_size=int(stack.get("rsa_key_size", 2048)),
                    propagation_seconds=1, lab=True)
    if certificates is not None:
        settings = replace(settings, certificates=tuple(AcmeCertificate(tuple(names))
                                                        for names in certificates))
    return acme_doc(settings)


def with_acme(doc: Mapping[str, Any],
              certificates: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    out = json.loads(json.dumps(doc))
    out["acme"] = acme_section(doc, certificates)
    return out


def units() -> dict[str, str]:
    common = "[Service]\nRestart=on-failure\nRestartSec=1\n"
    install = "\n[Install]\nWantedBy=multi-user.target\n"
    return {
        UNITS[0]: ("[Unit]\nDescription=Lab DNS for pebble (TXT records of the fake OVH zone)\n"
                   f"{common}ExecStart=/usr/bin/pebble-challtestsrv -dns01 {CHALLTESTSRV_DNS} "
                   f"-management {CHALLTESTSRV_MANAGEMENT} -http01 '' -https01 '' "
                   f"-tlsalpn01 '' -defaultIPv4 127.0.0.1 -defaultIPv6 ''{install}"),
        UNITS[1]: ("[Unit]\nDescription=Lab ACME server (pebble)\n"
                   f"After={UNITS[0]}\n{common}"
                   "Environment=PEBBLE_AUTHZREUSE=0 PEBBLE_VA_NOSLEEP=1\n"
                   f"ExecStart=/usr/bin/pebble -config {DIR}/pebble.json "
                   f"-dnsserver {CHALLTESTSRV_DNS}{install}"),
        UNITS[2]: ("[Unit]\nDescription=Lab fake of the OVH API (DNS zone calls)\n"
                   f"After={UNITS[0]}\n{common}"
                   f"ExecStart=/usr/bin/python3 -I {DIR}/fake_ovh.py --listen {FAKE_OVH} "
                   f"--state {DIR}/state.json --tls-cert {DIR}/ovh/fullchain.pem "
                   f"--tls-key {DIR}/ovh/privkey.pem "
                   f"--publish-url http://{CHALLTESTSRV_MANAGEMENT} --fail-file {FAIL_FILE}"
                   f"{install}"),
    }


def pebble_config() -> dict[str, Any]:
    return {"pebble": {"listenAddress": PEBBLE, "managementListenAddress": PEBBLE_MANAGEMENT,
                       "certificate": f"{DIR}/pebble/fullchain.pem",
                       "privateKey": f"{DIR}/pebble/privkey.pem",
                       "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
                       "externalAccountBindingRequired": False}}


def new_credentials() -> dict[str, str]:
    return {"application_key": secrets.token_hex(8), "application_secret": secrets.token_hex(16),
            "consumer_key": secrets.token_hex(16)}


def fake_state(zone: str, creds: Mapping[str, str]) -> dict[str, Any]:
    return {"zones": [zone],
            "applications": {creds["application_key"]: creds["application_secret"]},
            "consumers": {creds["consumer_key"]: {"application": creds["application_key"],
                                                   "rules": access_rules(zone)}}}


def _put(exec_root: Exec, path: str, data: str | bytes, mode: int) -> None:
    text = data.decode() if isinstance(data, bytes) else data
    exec_root(["sh", "-c", f"umask 077 && mkdir -p {shlex.quote(os.path.dirname(path))} && "
                           f"cat > {path}.new && chmod {mode:o} {path}.new && "
                           f"mv -f {path}.new {path}"], input=text)


def setup(exec_root: Exec, tls_dir: Path, doc: Mapping[str, Any]) -> dict[str, str]:
    """Install and start the stand-ins on ops (as root inside the container: the lab plays the
    outside world, no role does this). Returns the OVH credentials to give certbot (through
    `fab acme.set-credentials`' code); a second call keeps the running stand-ins' state."""
    zone = str(doc["dns_zone"])
    exec_root(["sh", "-c", "command -v pebble >/dev/null && command -v update-ca-certificates "
                           ">/dev/null || { timeout 300 apt-get update -qq; DEBIAN_FRONTEND="
                           "noninteractive timeout 600 apt-get install -y -qq pebble "
                           "ca-certificates curl; }"], timeout=900)
    ca_cert, _key = tls.ensure_ca(tls_dir)
    for label, name in (("pebble", "localhost"), ("ovh", OVH_NAME)):
        out = tls.issue(tls_dir, f"acme-{label}", (name,))
        _put(exec_root, f"{DIR}/{label}/fullchain.pem", (out / "fullchain.pem").read_bytes(),
             0o644)
        _put(exec_root, f"{DIR}/{label}/privkey.pem", (out / "privkey.pem").read_bytes(), 0o600)
    # The lab CA trusted by ops' own clients (certbot's requests) in the lab only.
    _put(exec_root, "/usr/local/share/ca-certificates/hosting-lab-ca.crt",
         ca_cert.read_bytes(), 0o644)
    exec_root(["update-ca-certificates", "--fresh"], timeout=120)
    exec_root(["sh", "-c", f"grep -q ' {OVH_NAME}$' /etc/hosts || "
                           f"echo '127.0.0.1 {OVH_NAME}' >> /etc/hosts"])
    _put(exec_root, f"{DIR}/fake_ovh.py", SOURCE.read_text(), 0o644)
    _put(exec_root, f"{DIR}/pebble.json", json.dumps(pebble_config(), indent=2), 0o644)
    creds = new_credentials()
    _put(exec_root, f"{DIR}/state.json", json.dumps(fake_state(zone, creds)), 0o600)
    for unit, text in units().items():
        _put(exec_root, f"/etc/systemd/system/{unit}", text, 0o644)
    exec_root(["rm", "-f", FAIL_FILE])
    exec_root(["systemctl", "daemon-reload"])
    exec_root(["systemctl", "enable", "--quiet", *UNITS])
    exec_root(["systemctl", "restart", *UNITS])
    # Ready when pebble's directory and the fake's time answer over TLS with the lab CA.
    exec_root(["sh", "-c", "for i in $(seq 60); do "
                           f"curl -fsS -o /dev/null {DIRECTORY} && "
                           f"curl -fsS -o /dev/null https://{OVH_NAME}/1.0/auth/time && exit 0; "
                           "sleep 0.5; done; exit 1"], timeout=60)
    return creds


CLIENT_BUNDLE = "acme-clients.pem"  # in the lab's TLS directory: lab CA + pebble's root


def pebble_root(exec_root: Exec) -> str:
    """Pebble's root certificate (a new one each time pebble starts), from its management API."""
    pem = exec_root(["curl", "-fsS", "--max-time", "20",
                     f"https://localhost:{PEBBLE_MANAGEMENT.rsplit(':', 1)[1]}/roots/0"]).stdout
    if "BEGIN CERTIFICATE" not in pem:
        raise RuntimeError("pebble's management API gave no root certificate")
    return pem


def write_client_bundle(tls_dir: Path, root_pem: str) -> Path:
    """What the lab's clients trust while ACME is on: the lab CA (its other services) and
    pebble's root (the sites' certificate): the monitoring's blackbox, curl, the tests."""
    ca_cert, _key = tls.ensure_ca(tls_dir)
    path = tls_dir / CLIENT_BUNDLE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(ca_cert.read_text().rstrip("\n") + "\n" + root_pem.strip() + "\n")
    tmp.rename(path)
    return path


def apply(doc: dict[str, Any], tls_dir: Path | None) -> None:
    """LAB_ACME=1 in `python -m lab inventory`: the acme section, and the clients' bundle once
    `python -m lab.acme_cli` wrote it."""
    doc["acme"] = acme_section(doc)
    bundle = tls_dir / CLIENT_BUNDLE if tls_dir is not None else None
    if bundle is not None and bundle.exists() and doc.get("tls", {}).get("source"):
        doc["tls"]["source"]["client_ca"] = str(bundle)


def credentials_text(creds: Mapping[str, str]) -> str:
    """What `fab acme.set-credentials` reads on stdin."""
    return "".join(f"{k}={v}\n" for k, v in creds.items())


def stop(exec_root: Exec) -> None:
    """Stop the stand-ins and certbot's timer on ops; forget certbot's failed state (the lab's
    monitoring must not see a failed unit left by a drill)."""
    exec_root(["systemctl", "disable", "--now", "--quiet", "certbot.timer", *UNITS], check=False)
    exec_root(["systemctl", "reset-failed", "certbot.service",
               "hosting-acme-failed.service"], check=False)
    exec_root(["rm", "-f", FAIL_FILE], check=False)

