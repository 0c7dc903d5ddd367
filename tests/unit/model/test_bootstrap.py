from __future__ import annotations

import yaml

from model import load_stack
from model.bootstrap import bootstrap_files, cloud_config
from model.topology import plan_hosts

from .conftest import ROOT

STACK = load_stack(ROOT / "Pulumi.prod.yaml")


def _files(role: str, cert: str | None = "ssh-ed25519-cert-v01@openssh.com AAAA"):
    host = next(h for h in plan_hosts(STACK) if h.role == role)
    return {f.path: f for f in bootstrap_files(STACK, host, host_key_private="KEY",
                                               host_key_public="ssh-ed25519 AAAA",
                                               host_certificate=cert)}


def test_bootstrap_files_sshd_accepts_certificates_only():
    conf = _files("web")["/etc/ssh/sshd_config.d/00-bootstrap.conf"].content.splitlines()
    for line in ("TrustedUserCAKeys /etc/ssh/user_ca.pub", "AuthorizedKeysFile none",
                 "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                 "PermitRootLogin no", "RevokedKeys /etc/ssh/revoked_keys.krl"):
        assert line in conf


def test_bootstrap_files_krl_exists_even_when_empty():
    assert _files("proxy")["/etc/ssh/revoked_keys.krl"].content == ""


def test_bootstrap_files_host_key_private_mode_0600():
    assert _files("ops")["/etc/ssh/ssh_host_ed25519_key"].mode == 0o600


def test_bootstrap_files_principals_follow_model_roles():
    assert _files("storage")["/etc/ssh/auth_principals/admin"].content == "sysadmin\nci-deploy\n"


def test_bootstrap_files_without_certificate_omits_host_certificate():
    files = _files("web", cert=None)
    assert "/etc/ssh/ssh_host_ed25519_key-cert.pub" not in files
    assert "HostCertificate" not in files["/etc/ssh/sshd_config.d/00-bootstrap.conf"].content


def test_cloud_config_no_password_and_user_ca_trusted():
    host = plan_hosts(STACK)[0]
    text = cloud_config(STACK, host, host_key_private="KEY", host_key_public="ssh-ed25519 AAAA")
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert doc["ssh_pwauth"] is False and doc["users"] == []
    paths = {f["path"]: f for f in doc["write_files"]}
    assert paths["/etc/ssh/user_ca.pub"]["content"].strip() == STACK.ssh.user_ca_public_key
    assert paths["/etc/ssh/ssh_host_ed25519_key"]["permissions"] == "0600"
