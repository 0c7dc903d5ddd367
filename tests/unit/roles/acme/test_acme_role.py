"""roles/acme/role.py: certbot on ops and the proxy's installer account, rendered from the
inventory; the proxy's uploaded/lab certificate becomes the fallback once ACME is on (issue 14)."""
from __future__ import annotations

import configparser
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.facts import SystemFacts
from engine.inventory import Inventory
from engine.resources import Check, File
from engine.role import HostContext
from lab import tls  # tests may use the lab's CA; roles may not
from roles.acme import config as c
from roles.acme import role
from roles.proxy.role import proxy
from roles.registry import desired

ON = {"enabled": True, "email": "hostmaster@villeparisis.fr", "propagation_seconds": 30}


def with_acme(inv: Inventory, acme: dict | None, tls_dir: Path | None = None) -> Inventory:
    doc = json.loads(json.dumps(inv.doc))
    if acme is not None:
        doc["acme"] = acme
    if tls_dir is not None:
        doc["tls"]["source"] = {"directory": str(tls_dir)}
    return Inventory.from_doc(doc)


def ctx(inv: Inventory, host: str) -> HostContext:
    return HostContext(inv, inv.host(host), SystemFacts(container="systemd-nspawn"))


def files(d) -> dict[str, File]:
    return {r.path: r for r in d.resources if isinstance(r, File)}


def test_acme_disabled_ops_nothing_proxy_deploy_access_absent(prod: Inventory):
    assert role.acme_ops(ctx(prod, "ops")).resources == ()
    proxy_res = role.acme_proxy(ctx(prod, "proxy")).resources
    assert {type(r).__name__ for r in proxy_res} == {"Absent"}
    assert {r.path for r in proxy_res} == {f"/etc/ssh/auth_principals/{c.PROXY_USER}",
                                           "/etc/sudoers.d/hosting-acme"}


def test_cli_ini_renders_dns01_ovh_hooks_ecdsa_and_deploy_hook(prod: Inventory):
    inv = with_acme(prod, ON)
    ini = files(role.acme_ops(ctx(inv, "ops")))[c.CLI_INI].content
    parsed = configparser.ConfigParser()
    parsed.read_string("[cli]\n" + str(ini))
    s = parsed["cli"]
    assert s["server"] == c.PRODUCTION
    assert (s["authenticator"], s["preferred-challenges"]) == ("manual", "dns")
    auth = s["manual-auth-hook"].split()
    assert auth[2:4] == [f"{c.HOOK_DIR}/ovh_dns.py", "auth"]
    assert auth[4:] == ["--credentials", c.CREDENTIALS, "--zone", "villeparisis.fr",
                        "--propagation-seconds", "30"]
    assert s["manual-cleanup-hook"].split()[3] == "cleanup"
    assert (s["key-type"], s["elliptic-curve"]) == ("ecdsa", "secp256r1")
    assert s["deploy-hook"] == role.hook_command()
    assert s["email"] == "hostmaster@villeparisis.fr"


def test_certbot_dropin_no_random_sleep_in_lab_only(prod: Inventory):
    prod_dropin = files(role.acme_ops(ctx(with_acme(prod, ON), "ops")))[role.DROPIN].content
    lab_dropin = files(role.acme_ops(ctx(with_acme(prod, {**ON, "lab": True}), "ops")))[
        role.DROPIN].content
    assert "--no-random-sleep-on-renew" not in str(prod_dropin)
    assert "ExecStart=/usr/bin/certbot -q renew --no-random-sleep-on-renew" in str(lab_dropin)
    assert f"OnFailure={role.FAILED_UNIT}" in str(prod_dropin)


def test_acme_ops_credentials_file_never_written_dir_0700(prod: Inventory):
    d = role.acme_ops(ctx(with_acme(prod, ON), "ops"))
    assert c.CREDENTIALS not in files(d)
    dirs = {r.path: r.mode for r in d.resources if type(r).__name__ == "Directory"}
    assert dirs[c.CREDENTIALS_DIR] == 0o700
    assert files(d)[c.SSH_CONFIG].mode == 0o600
    assert any(isinstance(r, Check) and r.name == "acme-ssh-key" for r in d.resources)


def test_acme_ops_ssh_config_certificate_only_to_proxy(prod: Inventory):
    inv = with_acme(prod, ON)
    f = files(role.acme_ops(ctx(inv, "ops")))
    conf = str(f[c.SSH_CONFIG].content)
    assert f"HostName {inv.proxy.private_ip}" in conf
    assert f"CertificateFile {c.SSH_CERT}" in conf and "StrictHostKeyChecking yes" in conf
    assert str(f[c.KNOWN_HOSTS].content).startswith(
        f"@cert-authority proxy,{inv.proxy.private_ip} ")


def test_acme_proxy_forced_command_same_in_principals_and_sudoers(prod: Inventory):
    inv = with_acme(prod, ON)
    f = files(role.acme_proxy(ctx(inv, "proxy")))
    command = role.install_command(inv.tls.certificate, inv.tls.key)
    principals = str(f[f"/etc/ssh/auth_principals/{c.PROXY_USER}"].content)
    assert principals == f'restrict,command="{command}" {c.PRINCIPAL}\n'
    sudoers = str(f["/etc/sudoers.d/hosting-acme"].content)
    assert f"{c.PROXY_USER} ALL=(root) NOPASSWD: {command.removeprefix('sudo -n ')}" in sudoers
    assert f["/etc/sudoers.d/hosting-acme"].mode == 0o440


@pytest.mark.skipif(not shutil.which("visudo", path="/usr/sbin:/usr/bin"),
                    reason="visudo (sudo) not installed")
def test_acme_proxy_sudoers_passes_visudo(prod: Inventory, tmp_path: Path):
    f = files(role.acme_proxy(ctx(with_acme(prod, ON), "proxy")))
    path = tmp_path / "sudoers"
    path.write_text(str(f["/etc/sudoers.d/hosting-acme"].content))
    visudo = shutil.which("visudo", path="/usr/sbin:/usr/bin")
    assert subprocess.run([visudo, "-cqf", str(path)], check=False).returncode == 0


def test_proxy_role_acme_on_installs_fallback_create_only(prod: Inventory, tmp_path: Path):
    source = tls.issue(tmp_path, "prod", ("*.villeparisis.fr", "villeparisis.fr"))
    off = files(proxy(ctx(with_acme(prod, None, source), "proxy")))
    on = files(proxy(ctx(with_acme(prod, ON, source), "proxy")))
    key = prod.tls.key
    assert not off[key].create_only and not off[prod.tls.certificate].create_only
    assert on[key].create_only and on[prod.tls.certificate].create_only


def test_registry_acme_on_adds_certbot_to_ops_only(prod: Inventory):
    inv = with_acme(prod, ON)
    ops = [r for r in desired(ctx(inv, "ops")).resources if getattr(r, "path", "") == c.CLI_INI]
    web = [r for r in desired(ctx(inv, inv.sites[0].host)).resources
           if getattr(r, "path", "").startswith("/etc/letsencrypt")]
    assert len(ops) == 1 and web == []
