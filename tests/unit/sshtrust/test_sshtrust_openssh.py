"""sshtrust.openssh: the OpenSSH client, given our known_hosts + ssh_config, trusts only certs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sshtrust_helpers import HOST_NAME, Pki, Sshd, pub

from sshtrust import ca
from sshtrust._run import SshTrustError
from sshtrust.openssh import known_hosts_line, ssh_config_block


@pytest.fixture(scope="module")
def client_key(pki: Pki) -> Path:
    return pki.user_key("openssh-client", options=("permit-pty", "permit-port-forwarding"))


def ssh(tmp_path: Path, pki: Pki, key: Path, targets: dict[str, Sshd], alias: str, **kw):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_hosts_line(pub(pki.host_ca), ["web-*", "ops"]))
    config = tmp_path / "ssh_config"
    config.write_text(
        "".join(
            ssh_config_block(
                name,
                hostname="127.0.0.1",
                port=d.port,
                user="root",
                known_hosts=known_hosts,
                identity_file=key,
                revoked_host_keys=pki.host_krl,
                **(kw if name == alias else {}),
            )
            for name, d in targets.items()
        )
    )
    return subprocess.run(
        ["ssh", "-F", str(config), alias, "echo", "via-openssh"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_known_hosts_line_format(pki: Pki) -> None:
    line = known_hosts_line(pub(pki.host_ca), ["web-*", "10.77.0.*"])
    marker, patterns, kind, b64 = line.split()
    assert (marker, patterns, kind) == ("@cert-authority", "web-*,10.77.0.*", "ssh-ed25519")
    assert b64 in pub(pki.host_ca).read_text()


@pytest.mark.parametrize("patterns", [[], ["a b"], ["a,b"]])
def test_known_hosts_line_bad_patterns_refused(pki: Pki, patterns) -> None:
    with pytest.raises(SshTrustError):
        known_hosts_line(pub(pki.host_ca), patterns)


def test_ssh_config_block_good_cert_openssh_logs_in(sshd, pki, client_key, tmp_path) -> None:
    proc = ssh(tmp_path, pki, client_key, {HOST_NAME: sshd.start("good")}, HOST_NAME)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "via-openssh"


def test_ssh_config_block_proxy_jump_openssh_logs_in(sshd, pki, client_key, tmp_path) -> None:
    targets = {"ops": sshd.start("good", principals=["ops"]), HOST_NAME: sshd.start("good")}
    proc = ssh(tmp_path, pki, client_key, targets, HOST_NAME, proxy_jump="ops")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "via-openssh"


@pytest.mark.parametrize("kind", ["rogue", "expired", "none"])
def test_ssh_config_block_bad_host_openssh_refuses(sshd, pki, client_key, tmp_path, kind) -> None:
    proc = ssh(tmp_path, pki, client_key, {HOST_NAME: sshd.start(kind)}, HOST_NAME)
    assert proc.returncode == 255
    assert "via-openssh" not in proc.stdout
    refusals = ("Host key verification failed", "no matching host key type")
    assert any(r in proc.stderr for r in refusals), proc.stderr


def test_ssh_config_block_revoked_host_openssh_refuses(sshd, pki, client_key, tmp_path) -> None:
    daemon = sshd.start("good")
    krl = ca.init_krl(tmp_path / "host.krl", pub(pki.host_ca))
    ca.revoke(krl, pub(pki.host_ca), certificates=[daemon.host_cert])
    known_hosts = tmp_path / "kh"
    known_hosts.write_text(known_hosts_line(pub(pki.host_ca), [HOST_NAME]))
    config = tmp_path / "cfg"
    config.write_text(
        ssh_config_block(
            HOST_NAME,
            hostname="127.0.0.1",
            port=daemon.port,
            user="root",
            known_hosts=known_hosts,
            identity_file=client_key,
            revoked_host_keys=krl,
        )
    )
    proc = subprocess.run(
        ["ssh", "-F", str(config), HOST_NAME, "true"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 255 and "revoked" in proc.stderr.lower(), proc.stderr
