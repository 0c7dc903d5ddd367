"""The CI's SSH access (docs/ci.md, R-GDPR-5) against real sshd daemons on 127.0.0.1.

The pipelines hold a key and a certificate an admin issued with `fab ca.sign-user --ci
--principal ci-deploy` (engine.ca_admin.sign_user, ci=True). These tests issue exactly that
certificate and show it is enough for what the apply jobs do (commands on a host behind the
bastion, as `fab deploy` reaches them) and no more (no terminal); and that the variables the
pipeline's "SSH access" step exports are what the engine reads. sshd must run as root: the
daemon tests are skipped otherwise (as in tests/unit/sshtrust).
"""
from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import paramiko
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sshtrust"))
from sshtrust_helpers import Pki, Sshd, SshdFactory, keygen, pub  # noqa: E402

from engine import ca_admin  # noqa: E402
from engine.access import credentials  # noqa: E402
from sshtrust import ca  # noqa: E402
from sshtrust.certificate import load_certificate  # noqa: E402
from sshtrust.hostkey import make_connection  # noqa: E402

CI_PRINCIPAL = "ci-deploy"
KNOWN = ["sysadmin", CI_PRINCIPAL]  # both stacks' hosting:ssh.principals


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("ci-pki"))


@pytest.fixture(scope="module")
def daemons(tmp_path_factory, pki):
    factory = SshdFactory(tmp_path_factory.mktemp("ci-sshd"), pki)
    try:
        yield factory
    finally:
        factory.stop_all()


def start(daemons: SshdFactory, *principals: str) -> Sshd:
    """An sshd whose root account admits the model's principals (sysadmin and ci-deploy)."""
    daemon = daemons.start("good", principals=list(principals))
    (daemon.directory / "principals" / "root").write_text("sysadmin\nci-deploy\n")
    return daemon


def ci_key(pki: Pki, name: str, *, ci: bool = True) -> Path:
    d = pki.root / "ci" / name
    d.mkdir(parents=True)
    key_pub = keygen(d / "ci_ed25519")
    ca_admin.sign_user(pki.user_ca.parent, key_pub, [CI_PRINCIPAL], timedelta(hours=8), KNOWN,
                       key_id=f"{CI_PRINCIPAL}@{name}", ci=ci)
    return d / "ci_ed25519"


def connect(pki: Pki, daemon: Sshd, key: Path, name: str, gateway=None):  # noqa: ANN001
    return make_connection("127.0.0.1", "root", daemon.port, host_ca_pub=pub(pki.host_ca),
                           krl=pki.host_krl, expected_name=name, user_key=key, gateway=gateway)


def test_sign_user_ci_certificate_ci_deploy_no_pty_port_forwarding(pki):
    cert = load_certificate(ci_key(pki, "options").with_name("ci_ed25519-cert.pub"))
    assert cert.principals == (CI_PRINCIPAL,)
    assert set(cert.extensions) == {"permit-port-forwarding"}
    assert cert.valid_before_dt - cert.valid_after_dt <= timedelta(hours=8, minutes=5)


def test_ci_certificate_runs_commands_behind_bastion(daemons, pki):
    bastion = start(daemons, "ops")
    target = start(daemons, "web-a")
    key = ci_key(pki, "hop")
    gateway = connect(pki, bastion, key, "ops")
    conn = connect(pki, target, key, "web-a", gateway=gateway)
    try:
        assert conn.run("id -un", hide=True, in_stream=False).stdout.strip() == "root"
    finally:
        conn.close()
        gateway.close()
    assert f"ID {CI_PRINCIPAL}@hop" in target.log()  # sshd logs the certificate's key id


def test_ci_certificate_terminal_refused(daemons, pki):
    daemon = start(daemons, "web-a")
    conn = connect(pki, daemon, ci_key(pki, "pty"), "web-a")
    try:
        assert conn.run("echo exec", hide=True, in_stream=False).stdout.strip() == "exec"
        with pytest.raises(paramiko.SSHException):  # sshd closes the channel on pty-req
            conn.run("tty", hide=True, pty=True, in_stream=False)
    finally:
        conn.close()


def test_certificate_without_port_forwarding_cannot_cross_bastion(daemons, pki):
    """Why `--ci` keeps permit-port-forwarding: the bastion hop is a direct-tcpip channel."""
    bastion = start(daemons, "ops")
    target = start(daemons, "web-a")
    d = pki.root / "ci" / "noforward"
    d.mkdir(parents=True)
    key_pub = keygen(d / "ci_ed25519")
    ca.sign_user_key(pki.user_ca, key_pub, "noforward@test", [CI_PRINCIPAL],
                     options=("permit-pty",))
    key = d / "ci_ed25519"
    gateway = connect(pki, bastion, key, "ops")
    conn = connect(pki, target, key, "web-a", gateway=gateway)
    try:
        with pytest.raises(paramiko.ChannelException, match="Administratively prohibited"):
            conn.run("true", hide=True, in_stream=False)
    finally:
        conn.close()
        gateway.close()
    assert "refused local port forward" in bastion.log()


def test_credentials_read_the_variables_the_ssh_step_exports(tmp_path, monkeypatch):
    key = tmp_path / "ssh" / "ci_ed25519"
    key.parent.mkdir()
    key.write_text("private\n")
    key.with_name("ci_ed25519-cert.pub").write_text("cert\n")
    monkeypatch.setenv("HOSTING_SSH_IDENTITY", str(key))
    monkeypatch.setenv("HOSTING_CA_DIR", str(tmp_path / "ca"))
    creds = credentials("prod", inv=None)
    assert creds.user_key == key
    assert creds.user_cert == key.with_name("ci_ed25519-cert.pub")
    assert creds.ca_dir == tmp_path / "ca" / "prod"
    assert creds.host_krl == tmp_path / "ca" / "prod" / "host_ca.krl"
