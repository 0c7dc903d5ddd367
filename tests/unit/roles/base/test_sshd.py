"""The baseline's sshd: rendered from a real inventory, validated by the real `sshd -t -f`,
and checked against the dev-sec ssh-baseline values and the certificate-only design."""
from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.decide import Action, decide_one
from engine.facts import HostFacts
from engine.inventory import Inventory
from engine.resources import Absent, File
from engine.role import HostContext, Settings
from roles.base import sshd
from sshtrust import ca

OPENSSH_10_KEX = ("sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com",
                  "mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
                  "diffie-hellman-group14-sha256", "ecdh-sha2-nistp256")
Check = Callable[[Path], subprocess.CompletedProcess[str]]
HOSTS = ("ops", "proxy", "web-villeparisis", "backup-a")


def settings(text: str) -> dict[str, str]:
    """First value of each keyword (what sshd itself keeps), lower-cased keys."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key.lower(), value.strip())
    return out


def test_algorithms_openssh_10_puts_post_quantum_key_exchange_first() -> None:
    chosen = sshd.algorithms({"kex": OPENSSH_10_KEX})
    assert chosen["kex"][0] == "mlkem768x25519-sha256"
    assert chosen["kex"][:2] == ("mlkem768x25519-sha256", "sntrup761x25519-sha512")
    # paramiko (Fabric) speaks only this one of ours: it must stay.
    assert "curve25519-sha256@libssh.org" in chosen["kex"]
    assert not any("diffie-hellman" in k or "nistp" in k for k in chosen["kex"])


def test_algorithms_older_openssh_keeps_only_what_it_knows() -> None:
    chosen = sshd.algorithms({"kex": ("curve25519-sha256", "sntrup761x25519-sha512@openssh.com")})
    assert chosen["kex"] == ("sntrup761x25519-sha512@openssh.com", "curve25519-sha256")


def test_algorithms_no_overlap_is_an_error_never_an_empty_line() -> None:
    with pytest.raises(ValueError, match="none of our kex"):
        sshd.algorithms({"kex": ("diffie-hellman-group1-sha1",)})


def test_algorithms_unknown_support_keeps_the_full_preference() -> None:
    assert sshd.algorithms({}) == sshd.PREFERRED


@pytest.mark.parametrize("host", HOSTS)
def test_sshd_config_rendered_for_each_role_passes_sshd_t(
        host: str, ctx_for: Callable[..., HostContext], tmp_path: Path,
        local_algorithms: dict[str, tuple[str, ...]], sshd_check: Check) -> None:
    text = sshd.sshd_config(ctx_for(host, algorithms=local_algorithms))
    proc = sshd_check(with_host_key(text, tmp_path, host))
    assert proc.returncode == 0, proc.stderr


def test_sshd_t_rejects_a_config_with_an_unknown_keyword(
        ctx_for: Callable[..., HostContext], tmp_path: Path,
        local_algorithms: dict[str, tuple[str, ...]], sshd_check: Check) -> None:
    text = sshd.sshd_config(ctx_for("proxy", algorithms=local_algorithms))
    proc = sshd_check(with_host_key(text + "PasswordAuthenticaton yes\n", tmp_path, "proxy"))
    assert proc.returncode != 0


def with_host_key(text: str, tmp_path: Path, host: str) -> Path:
    """The config, pointing at a host key and certificate (from a throwaway host CA) in
    tmp_path, where sshd -t can load them."""
    key = tmp_path / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    host_ca = ca.create_ca(tmp_path / "host_ca", "test-host-ca")
    ca.sign_host_key(host_ca, key.with_name(key.name + ".pub"), f"test-{host}", [host])
    config = tmp_path / "sshd_config"
    config.write_text(text.replace(sshd.HOST_KEY, str(key)))
    return config


@pytest.mark.parametrize("host", HOSTS)
def test_sshd_config_meets_the_ssh_baseline_and_accepts_certificates_only(
        host: str, ctx_for: Callable[..., HostContext]) -> None:
    s = settings(sshd.sshd_config(ctx_for(host)))
    expected = {
        "port": "22", "addressfamily": "inet", "permitrootlogin": "no", "strictmodes": "yes",
        "syslogfacility": "AUTH", "loglevel": "VERBOSE", "logingracetime": "30s",
        "maxauthtries": "2", "maxsessions": "2", "maxstartups": "10:30:100",
        "pubkeyauthentication": "yes", "authenticationmethods": "publickey",
        "trusteduserCAkeys".lower(): "/etc/ssh/user_ca.pub",
        "authorizedprincipalsfile": "/etc/ssh/auth_principals/%u",
        "authorizedkeysfile": "none", "revokedkeys": "/etc/ssh/revoked_keys.krl",
        "hostbasedauthentication": "no", "ignorerhosts": "yes", "ignoreuserknownhosts": "yes",
        "passwordauthentication": "no", "permitemptypasswords": "no",
        "kbdinteractiveauthentication": "no", "kerberosauthentication": "no",
        "gssapiauthentication": "no", "allowagentforwarding": "no", "gatewayports": "no",
        "permittunnel": "no", "x11forwarding": "no", "allowstreamlocalforwarding": "no",
        "permituserenvironment": "no", "tcpkeepalive": "no", "clientaliveinterval": "300",
        "clientalivecountmax": "3", "printmotd": "no", "printlastlog": "no", "banner": "none",
        "debianbanner": "no", "hostkey": "/etc/ssh/ssh_host_ed25519_key",
        "hostcertificate": "/etc/ssh/ssh_host_ed25519_key-cert.pub",
        "allowgroups": "hosting-ssh", "allowtcpforwarding": "no", "permitopen": "none",
    }
    assert {k: s.get(k) for k in expected} == expected
    assert "include" not in s  # the file is the whole configuration
    assert all(a.endswith("-cert-v01@openssh.com") for a in
               s["pubkeyacceptedalgorithms"].split(","))


def test_sshd_config_bastion_forwards_only_to_the_other_hosts_ssh_ports_and_its_uis(
        ctx_for: Callable[..., HostContext], prod: Inventory) -> None:
    text = sshd.sshd_config(ctx_for("ops"))
    s = settings(text)
    assert (s["allowtcpforwarding"], s["permitopen"]) == ("no", "none")  # everyone but...
    assert s["permitlisten"] == "none"
    assert "disableforwarding" not in s
    # ... the admins' login, in the last block (a Match block runs to the end of the file).
    head, _, block = text.partition(f"\nMatch User {prod.login_user}\n")
    assert "\nMatch " not in head and "Match " not in block
    m = settings(block)
    assert m["allowtcpforwarding"] == "local"
    # + Prometheus and Alertmanager on the bastion's loopback (issue 13, SSH tunnel only)
    others = sorted([f"{h.private_ip}:22" for h in prod.hosts if h.name != "ops"]
                    + ["127.0.0.1:9090", "127.0.0.1:9093"])
    assert sorted(m["permitopen"].split()) == others


@pytest.mark.parametrize("host", ["proxy", "web-participation", "backup-b"])
def test_sshd_config_other_hosts_forward_nothing(host: str,
                                                 ctx_for: Callable[..., HostContext]) -> None:
    s = settings(sshd.sshd_config(ctx_for(host)))
    assert (s["allowtcpforwarding"], s["permitopen"], s["disableforwarding"]) == \
        ("no", "none", "yes")


def test_principals_file_lists_the_principals_of_the_host_role(
        ctx_for: Callable[..., HostContext]) -> None:
    assert sshd.principals_file(ctx_for("web-villeparisis")) == "sysadmin\nci-deploy\n"


def test_resources_krl_without_the_ca_is_created_only_when_missing(
        ctx_for: Callable[..., HostContext]) -> None:
    [krl] = [r for r in sshd.resources(ctx_for("proxy")) if getattr(r, "path", "") ==
             "/etc/ssh/revoked_keys.krl"]
    assert isinstance(krl, File) and krl.create_only and krl.content == b""


def test_resources_krl_from_the_ca_directory_is_pushed_as_is(
        ctx_for: Callable[..., HostContext]) -> None:
    [krl] = [r for r in sshd.resources(ctx_for("proxy", krl=b"SSHKRL\n...")) if
             getattr(r, "path", "") == "/etc/ssh/revoked_keys.krl"]
    assert isinstance(krl, File) and not krl.create_only and krl.content == b"SSHKRL\n..."


def test_resources_host_krl_pushed_from_the_ca_directory_else_created_empty(
        prod: Inventory) -> None:
    """The host CA's KRL reaches every host (the backup pushes' RevokedHostKeys, issue 19)."""
    def host_krl(settings: Settings) -> File:
        [f] = [r for r in sshd.resources(HostContext(prod, prod.host("web-villeparisis"),
                                                     settings=settings))
               if getattr(r, "path", "") == "/etc/ssh/revoked_host_keys.krl"]
        assert isinstance(f, File)
        return f
    pushed = host_krl(Settings(host_krl=b"SSHKRL\nhost"))
    assert pushed.content == b"SSHKRL\nhost" and not pushed.create_only
    assert host_krl(Settings()).create_only


def test_resources_first_boot_drop_in_removed_only_after_sshd_config_is_written(
        ctx_for: Callable[..., HostContext]) -> None:
    res = sshd.resources(ctx_for("backup-a"))
    keys = [r.key for r in res]
    assert keys.index("file:/etc/ssh/sshd_config") < keys.index(
        "absent:/etc/ssh/sshd_config.d/00-bootstrap.conf")
    config = res[keys.index("file:/etc/ssh/sshd_config")]
    assert isinstance(config, File)
    assert (config.mode, config.validate, config.notify) == (0o600, "/usr/sbin/sshd -t -f {}",
                                                             ("reload-sshd",))
    assert all(r.notify == ("reload-sshd",) for r in res if isinstance(r, Absent))


def test_resources_fresh_host_every_sshd_resource_has_an_action(
        ctx_for: Callable[..., HostContext]) -> None:
    res = [r for r in sshd.resources(ctx_for("ops")) if not isinstance(r, Absent)]
    assert all(any(isinstance(d, Action) for d in decide_one(r, HostFacts())) for r in res)


def test_resources_login_joins_the_ssh_group_before_sshd_config_names_it(
        ctx_for: Callable[..., HostContext], prod: Inventory) -> None:
    res = sshd.resources(ctx_for("web-villeparisis"))
    keys = [r.key for r in res]
    check = next(r for r in res if r.key == f"check:ssh-group-{prod.login_user}")
    assert keys.index(check.key) < keys.index(f"file:{sshd.SSHD_CONFIG}")
    assert f"usermod --append --groups hosting-ssh {prod.login_user}" in check.apply[-1]
    assert "groupadd --force --system hosting-ssh" in check.apply[-1]


def test_login_group_check_member_passes_stranger_would_change(tmp_path: Path) -> None:
    # The check's own shell logic, with `id` answering from a stub on PATH.
    check = sshd.login_group_check("admin")
    stub = tmp_path / "id"
    for groups, status in (("admin sudo hosting-ssh", 0), ("admin hosting-sshd", 3)):
        stub.write_text(f"#!/bin/sh\necho '{groups}'\n")
        stub.chmod(0o755)
        proc = subprocess.run(check.check, env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
                              capture_output=True, text=True)
        assert proc.returncode == status, (groups, proc.stdout, proc.stderr)
