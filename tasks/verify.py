"""`fab verify`: the verification suite (tests/verify, testinfra) against an environment's
hosts, lab or prod (R-GDPR-10: security auditable on request).

testinfra reaches hosts with OpenSSH, which checks host certificates natively; this writes the
files it needs from the inventory and the admin's own credentials (certificate only, host
certificate checked for each name, the host KRL when this machine holds one), then runs pytest.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from invoke import Exit, task

import localcmd
from engine.access import AccessError, Credentials, credentials
from engine.inventory import InventoryError, load
from sshtrust.openssh import inventory_ssh_config, known_hosts_line

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "tests" / "verify"


def default_out(env: str) -> Path:
    return Path.home() / ".cache" / "hosting" / "verify" / env


def write_access_files(doc: dict, creds: Credentials, out: Path) -> tuple[Path, Path]:
    """inventory.json and ssh_config (+ its known_hosts) for `pytest tests/verify`."""
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)
    inventory, config, known = out / "inventory.json", out / "ssh_config", out / "known_hosts"
    known.write_text(known_hosts_line(doc["ssh"]["host_ca_public_key"]))
    inventory.write_text(json.dumps(doc, indent=2) + "\n")
    config.write_text(inventory_ssh_config(
        doc, known_hosts=known, user_key=creds.user_key, user_cert=creds.user_cert,
        header=f"# Written by `fab verify --env {doc['environment']}`: rewritten every run.\n",
        revoked_host_keys=creds.host_krl if creds.host_krl.is_file() else None))
    return inventory, config


def pytest_argv(inventory: Path, config: Path, select: str = "") -> list[str]:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", str(SUITE),
            "--inventory", str(inventory), "--ssh-config", str(config)]
    return argv + (["-k", select] if select else [])


@task(help={
    "env": "lab | prod | preprod (default lab)",
    "select": "pytest -k expression, e.g. 'proxy' or 'nginx and not ssh_audit'",
    "inventory": "inventory JSON file instead of the lab's or Pulumi's stack output",
    "identity": "private key whose KEY-cert.pub is your user certificate",
    "ca-dir": "CA directory (its host KRL is honoured)",
    "out": "where to write inventory.json, ssh_config, known_hosts "
           "(default ~/.cache/hosting/verify/ENV)",
})
def verify(c, env="lab", select="", inventory="", identity="", ca_dir="", out=""):
    """Run tests/verify (sshd, firewall, ssh-audit, nginx, PHP-FPM, MariaDB) on the hosts."""
    try:
        inv = load(env, inventory or None)
        creds = credentials(env, identity, ca_dir, inv=inv)
    except (InventoryError, AccessError) as exc:
        raise Exit(f"verify: {exc}", code=2) from exc
    files = write_access_files(dict(inv.doc), creds, Path(out) if out else default_out(env))
    try:  # pytest prints to this terminal; no timeout: the user watches it
        proc = localcmd.run(pytest_argv(*files, select), cwd=REPO, check=False, capture=False,
                            timeout=None)
    except localcmd.CommandError as exc:
        raise Exit(f"verify: {exc}", code=2) from exc
    if proc.returncode != 0:
        raise Exit(f"verify: some checks failed (pytest exit {proc.returncode})",
                   code=proc.returncode)
