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
    off = with_acme(prod, {"enabled": False})
    assert role.acme_ops(ctx(off, "ops")).resources == ()
    proxy_res = role.acme_proxy(ctx(off, "proxy")).resources
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
    command = role.install_command()
    assert command.endswith(f"--config {c.PROXY_LINEAGES}")
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


TWO = {**ON, "certificates": [{"names": ["participation.villeparisis.fr"]},
                              {"names": ["villeparisis.fr", "*.villeparisis.fr"]}]}


def test_acme_proxy_lineages_file_lists_each_set(prod: Inventory):
    f = files(role.acme_proxy(ctx(with_acme(prod, TWO), "proxy")))
    doc = json.loads(str(f[c.PROXY_LINEAGES].content))
    assert sorted(doc["lineages"]) == ["participation.villeparisis.fr", "villeparisis.fr"]
    assert f[c.PROXY_LINEAGES].mode == 0o644


def test_cli_ini_rsa_key_type_renders_rsa_size_not_curve(prod: Inventory):
    inv = with_acme(prod, {**ON, "key_type": "rsa", "rsa_key_size": 3072})
    ini = str(files(role.acme_ops(ctx(inv, "ops")))[c.CLI_INI].content)
    assert "key-type = rsa\nrsa-key-size = 3072\n" in ini and "elliptic-curve" not in ini


def test_proxy_role_acme_on_each_site_served_its_lineage_seeded_from_fallback(
        prod: Inventory, tmp_path: Path):
    source = tls.issue(tmp_path, "prod", ("*.villeparisis.fr", "villeparisis.fr"))
    d = proxy(ctx(with_acme(prod, TWO, source), "proxy"))
    f = files(d)
    # The uploaded/lab pair stays where it is, rewritten by deploys (ACME never writes it).
    assert not f[prod.tls.key].create_only and not f[prod.tls.certificate].create_only
    conf = str(f["/etc/nginx/nginx.conf"].content)
    for lineage, domain in (("participation.villeparisis.fr", "participation.villeparisis.fr"),
                            ("villeparisis.fr", "villeparisis.fr www.villeparisis.fr")):
        block = conf[conf.rindex(f"server_name {domain};"):]  # the :443 server
        block = block[:block.index("}")]
        assert f"ssl_certificate {c.PROXY_CERT_DIR}/{lineage}/fullchain.pem;" in block
        assert f"ssl_certificate_key {c.PROXY_CERT_DIR}/{lineage}/privkey.pem;" in block
    assert f"ssl_certificate {prod.tls.certificate};" in conf  # http level: the fallback
    seeds = [r for r in d.resources if isinstance(r, Check) and r.name.startswith("acme-")]
    by_name = {r.name: r for r in seeds}
    assert set(by_name) == {"acme-fallback-participation.villeparisis.fr",
                            "acme-fallback-villeparisis.fr"}
    assert f"cp {prod.tls.key} {c.PROXY_CERT_DIR}/villeparisis.fr/privkey.pem.new" in \
        by_name["acme-fallback-villeparisis.fr"].apply[2]
    keys = [i for i, r in enumerate(d.resources) if getattr(r, "path", "") == prod.tls.key]
    conf_at = [i for i, r in enumerate(d.resources)
               if getattr(r, "path", "") == "/etc/nginx/nginx.conf"]
    assert keys[0] < d.resources.index(seeds[0]) < conf_at[0]


def test_proxy_role_acme_off_no_site_certificate_no_seed(prod: Inventory, tmp_path: Path):
    source = tls.issue(tmp_path, "prod", ("*.villeparisis.fr", "villeparisis.fr"))
    d = proxy(ctx(with_acme(prod, {"enabled": False}, source), "proxy"))
    assert c.PROXY_CERT_DIR not in str(files(d)["/etc/nginx/nginx.conf"].content)
    assert not [r for r in d.resources if isinstance(r, Check) and r.name.startswith("acme-")]


def test_registry_acme_on_adds_certbot_to_ops_only(prod: Inventory):
    inv = with_acme(prod, ON)
    ops = [r for r in desired(ctx(inv, "ops")).resources if getattr(r, "path", "") == c.CLI_INI]
    web = [r for r in desired(ctx(inv, inv.sites[0].host)).resources
           if getattr(r, "path", "").startswith("/etc/letsencrypt")]
    assert len(ops) == 1 and web == []


def test_acme_certificates_seed_copies_fallback_once_never_over_hook_pair(
        prod: Inventory, tmp_path: Path, monkeypatch):
    """The fallback seed's own shell commands, run for real on temporary paths: missing pair
    -> check says WOULD_CHANGE (3), apply copies the uploaded pair (key 0600), check then 0;
    a pair the hook installed later is never overwritten (the check passes, apply never runs)."""
    import dataclasses
    import os

    from roles.proxy.config import proxy_config
    from roles.proxy.role import acme_certificates
    monkeypatch.setattr(c, "PROXY_CERT_DIR", str(tmp_path / "acme"))
    fallback_cert, fallback_key = tmp_path / "tls.pem", tmp_path / "tls.key"
    fallback_cert.write_text("UPLOADED CERT\n")
    fallback_key.write_text("UPLOADED KEY\n")
    inv = with_acme(prod, ON)
    cfg = dataclasses.replace(proxy_config(inv), certificate=str(fallback_cert),
                              key=str(fallback_key))
    new_cfg, resources = acme_certificates(ctx(inv, "proxy"), cfg)
    seed = next(r for r in resources if isinstance(r, Check))
    lineage = tmp_path / "acme" / "villeparisis.fr"
    assert {s.certificate for s in new_cfg.sites} == {str(lineage / "fullchain.pem")}
    lineage.mkdir(parents=True)
    assert subprocess.run(seed.check, check=False).returncode == 3
    assert subprocess.run(seed.apply, check=False).returncode == 0
    assert (lineage / "privkey.pem").read_text() == "UPLOADED KEY\n"
    assert os.stat(lineage / "privkey.pem").st_mode & 0o777 == 0o600
    assert subprocess.run(seed.check, check=False).returncode == 0
    (lineage / "fullchain.pem").write_text("ACME CERT\n")  # the hook's, later
    assert subprocess.run(seed.check, check=False).returncode == 0
