"""SSH into the lab exactly as on OVH: user certificates from the user CA only, hosts proven by
certificates from the host CA, through the bastion.

The refusal tests connect from their own address in the vRack (a Probe), one address per test:
OpenSSH 10's PerSourcePenalties blocks an address after a few failed logins, and those
failures must not lock the machine itself (which every other test uses) out of the hosts."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.testing import LabSession, Probe, planned_hosts
from lab.trust import generate_key
from sshtrust.ca import create_ca
from sshtrust.openssh import known_hosts_line, ssh_config_block

pytestmark = pytest.mark.lab

HOSTS = [name for name, _role, _public in planned_hosts()]


def _direct_config(lab: LabSession, tmp: Path, *, key: Path, cert: Path | None,
                   known_hosts: Path | None = None) -> Path:
    """An ssh_config reaching every host directly on its private address, so each host's own
    sshd is what accepts or refuses."""
    blocks = [ssh_config_block(
        h["name"], hostname=h["private_ip"], user=lab.inventory["ssh"]["login_user"],
        known_hosts=known_hosts or lab.known_hosts, identity_file=key,
        certificate_file=cert or Path("/dev/null")) for h in lab.inventory["hosts"]]
    path = tmp / "ssh_config"
    path.write_text("\n".join(blocks) + "Host *\n  ConnectTimeout 10\n")
    return path


def _ssh(probe: Probe, config: Path, host: str,
         command: str = "hostname") -> subprocess.CompletedProcess[str]:
    return probe.run(["ssh", "-F", str(config), host, command], timeout=60)


def _key(tmp: Path, name: str) -> Path:
    key = tmp / name
    generate_key(key, name)
    return key


def _sign(ca: Path, key: Path, validity: str, principal: str = "sysadmin") -> Path:
    """Sign with ssh-keygen itself: sshtrust (rightly) refuses to issue expired certificates."""
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", f"test-{key.name}", "-n", principal,
                    "-V", validity, "-O", "clear", "-O", "permit-pty", f"{key}.pub"],
                   check=True, capture_output=True)
    return Path(f"{key}-cert.pub")


def _refused(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == 255 and "Permission denied (publickey)" in proc.stderr


@pytest.mark.parametrize("host", HOSTS)
def test_every_host_accepts_a_lab_user_certificate_through_the_generated_ssh_config(
        lab: LabSession, host: str) -> None:
    proc = lab.run(host, "hostname && id -un && sudo -n true && echo sudo-ok")
    assert proc.stdout.split() == [host, lab.inventory["ssh"]["login_user"], "sudo-ok"]


def test_a_fresh_certificate_from_the_lab_user_ca_works_from_a_probe(
        lab: LabSession, tmp_path: Path) -> None:
    """The positive control for the refusals below: same path, same kind of key, good cert."""
    key = _key(tmp_path, "good")
    cert = _sign(lab.lab.trust.user_ca, key, "-5m:+10m")
    config = _direct_config(lab, tmp_path, key=key, cert=cert)
    with Probe(lab.lab, "prv", 200) as probe:
        for host in HOSTS:
            proc = _ssh(probe, config, host)
            assert proc.returncode == 0 and proc.stdout.strip() == host, (host, proc.stderr)


def test_plain_key_is_refused_even_when_listed_in_authorized_keys(
        lab: LabSession, tmp_path: Path) -> None:
    key = _key(tmp_path, "plain")
    user = lab.inventory["ssh"]["login_user"]
    config = _direct_config(lab, tmp_path, key=key, cert=None)
    with Probe(lab.lab, "prv", 201) as probe:
        for host in HOSTS:
            lab.root_exec(host, ["install", "-d", "-o", user, "-m", "700", f"/home/{user}/.ssh"])
            lab.root_exec(host, ["sh", "-c", f"cat > /home/{user}/.ssh/authorized_keys"],
                          input=Path(f"{key}.pub").read_text())
            try:
                proc = _ssh(probe, config, host)
                assert _refused(proc), (host, proc.stderr)
            finally:
                lab.root_exec(host, ["rm", "-rf", f"/home/{user}/.ssh"])


PASSWORD_LOGIN = """
import json, sys, paramiko
t = paramiko.Transport((sys.argv[1], 22))
t.start_client(timeout=10)
try:
    t.auth_password(sys.argv[2], sys.stdin.read())
    print(json.dumps({"accepted": True}))
except paramiko.BadAuthenticationType as e:
    print(json.dumps({"accepted": False, "allowed": e.allowed_types}))
except paramiko.AuthenticationException:
    print(json.dumps({"accepted": False, "allowed": None}))
finally:
    t.close()
"""


def test_password_is_refused_even_when_the_user_has_one(lab: LabSession) -> None:
    user = lab.inventory["ssh"]["login_user"]
    password = "correct horse battery staple"
    with Probe(lab.lab, "prv", 202) as probe:
        for host in HOSTS:
            lab.root_exec(host, ["chpasswd"], input=f"{user}:{password}\n")
            try:
                proc = probe.run([sys.executable, "-c", PASSWORD_LOGIN,
                                  lab.host(host)["private_ip"], user], input=password)
                assert proc.returncode == 0, proc.stderr
                # Not even offered: the server allows public keys (certificates) only.
                assert json.loads(proc.stdout) == {"accepted": False, "allowed": ["publickey"]}
            finally:
                lab.root_exec(host, ["usermod", "--password", "!", user])


def test_expired_certificate_is_refused(lab: LabSession, tmp_path: Path) -> None:
    key = _key(tmp_path, "expired")
    config = _direct_config(lab, tmp_path, key=key,
                            cert=_sign(lab.lab.trust.user_ca, key, "-2h:-1h"))
    with Probe(lab.lab, "prv", 203) as probe:
        for host in HOSTS:
            assert _refused(_ssh(probe, config, host)), host


def test_certificate_from_another_ca_is_refused(lab: LabSession, tmp_path: Path) -> None:
    other = create_ca(tmp_path / "ca" / "other_user_ca", "not-the-lab")
    key = _key(tmp_path, "foreign")
    config = _direct_config(lab, tmp_path, key=key, cert=_sign(other, key, "-5m:+1h"))
    with Probe(lab.lab, "prv", 204) as probe:
        for host in HOSTS:
            assert _refused(_ssh(probe, config, host)), host


def test_certificate_for_another_principal_is_refused(lab: LabSession, tmp_path: Path) -> None:
    key = _key(tmp_path, "nobody")
    config = _direct_config(lab, tmp_path, key=key,
                            cert=_sign(lab.lab.trust.user_ca, key, "-5m:+1h", "nobody"))
    with Probe(lab.lab, "prv", 205) as probe:
        for host in HOSTS:
            assert _refused(_ssh(probe, config, host)), host


def test_known_hosts_trusting_another_host_ca_fails(lab: LabSession, tmp_path: Path) -> None:
    other = create_ca(tmp_path / "ca" / "other_host_ca", "not-the-lab-host-ca")
    known = tmp_path / "known_hosts"
    known.write_text(known_hosts_line(Path(f"{other}.pub")))
    bad = _direct_config(lab, tmp_path, key=lab.user_key, cert=lab.user_cert, known_hosts=known)
    with Probe(lab.lab, "prv", 206) as probe:
        for host in HOSTS:
            proc = _ssh(probe, bad, host)
            assert proc.returncode == 255, host
            assert "Host key verification failed" in proc.stderr, (host, proc.stderr)
        # The same config with the lab's known_hosts connects: only the CA differed.
        good = _direct_config(lab, tmp_path, key=lab.user_key, cert=lab.user_cert)
        assert _ssh(probe, good, HOSTS[0]).returncode == 0


@pytest.mark.parametrize("host", HOSTS)
def test_host_presents_the_key_pinned_in_the_inventory(lab: LabSession, host: str) -> None:
    proc = lab.run(host, "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
    assert proc.stdout.split()[1] == lab.host(host)["host_key_fingerprint"]


def test_testinfra_ssh_backend_reaches_every_host(lab: LabSession) -> None:
    for host in HOSTS:
        t = lab.testinfra_host(host)
        assert t.check_output("hostname") == host
        assert t.system_info.distribution == "debian"
        assert t.system_info.codename == "trixie"


def test_fabric_reaches_every_host_through_the_bastion_checking_host_certificates(
        lab: LabSession) -> None:
    for host in HOSTS:
        with lab.fabric_connection(host) as conn:
            assert conn.run("hostname", hide=True, in_stream=False).stdout.strip() == host
