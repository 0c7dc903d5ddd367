"""sshd, effective configuration (`sshd -T`), after dev-sec ssh-baseline's controls.

Each test names its dev-sec control. Certificates only is the contract's demand (R-GDPR-5).
Controls dropped by OpenSSH itself (Protocol, UseLogin, UsePrivilegeSeparation) are not ported.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

WEAK_CIPHERS = {"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "arcfour", "arcfour128",
                "arcfour256", "blowfish-cbc", "cast128-cbc", "rijndael-cbc@lysator.liu.se"}
WEAK_MACS = {"hmac-md5", "hmac-md5-96", "hmac-sha1", "hmac-sha1-96", "umac-64@openssh.com",
             "hmac-md5-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64-etm@openssh.com"}
WEAK_KEX = {"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1",
            "diffie-hellman-group-exchange-sha1", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384",
            "ecdh-sha2-nistp521"}
POST_QUANTUM = ("mlkem768x25519-sha256", "sntrup761x25519-sha512",
                "sntrup761x25519-sha512@openssh.com")

_CACHE: dict[str, dict[str, list[str]]] = {}


@pytest.fixture(scope="module")
def sshd(host: Any, host_entry: dict[str, Any]) -> dict[str, list[str]]:
    """`sshd -T` as {keyword: [values...]}; read once per host."""
    name = host_entry["name"]
    if name not in _CACHE:
        out = host.check_output("sshd -T")
        conf: dict[str, list[str]] = {}
        for line in out.splitlines():
            key, _, value = line.partition(" ")
            conf.setdefault(key.lower(), []).append(value.strip())
        _CACHE[name] = conf
    return _CACHE[name]


def one(conf: dict[str, list[str]], key: str) -> str:
    return conf[key][0]


def test_sshd_01_ciphers_strong_only(sshd):
    assert not set(one(sshd, "ciphers").split(",")) & WEAK_CIPHERS


def test_sshd_02_kex_strong_and_post_quantum_first(sshd):
    kex = one(sshd, "kexalgorithms").split(",")
    assert not set(kex) & WEAK_KEX
    assert kex[0] in POST_QUANTUM


def test_sshd_03_macs_strong_only(sshd):
    macs = set(one(sshd, "macs").split(","))
    assert not macs & WEAK_MACS
    assert all("etm" in m for m in macs)


def test_sshd_04_ssh_dir_owned_by_root_not_writable_by_others(host):
    d = host.file("/etc/ssh")
    assert d.is_directory and d.user == "root" and d.group == "root"
    assert d.mode & 0o022 == 0


def test_sshd_05_sshd_config_root_only(host):
    f = host.file("/etc/ssh/sshd_config")
    assert f.user == "root" and f.mode & 0o077 == 0


def test_sshd_06_no_root_login(sshd):
    assert one(sshd, "permitrootlogin") == "no"


def test_sshd_07_port_22(sshd):
    assert sshd["port"] == ["22"]


def test_sshd_08_address_family_inet(sshd):
    # dev-sec ssh-baseline sshd-08 and roles/base's `AddressFamily inet`: IPv4 only, as the
    # firewall's and the edge's rules are (issue 17: `inet6` passed here before).
    assert one(sshd, "addressfamily") == "inet"


def test_sshd_09_waived_listens_on_port_22_only(sshd):
    # sshd-09 (ListenAddress) is waived in roles/base: nftables decides who reaches :22, and
    # binding to an address brought up late would lock everyone out at boot. Port 22 only.
    assert {a.rsplit(":", 1)[1] for a in sshd["listenaddress"]} == {"22"}


def test_sshd_11_strict_modes(sshd):
    assert one(sshd, "strictmodes") == "yes"


def test_sshd_12_syslog_facility_auth(sshd):
    assert one(sshd, "syslogfacility") == "AUTH"


def test_sshd_13_log_level_verbose(sshd):
    assert one(sshd, "loglevel") == "VERBOSE"


def test_sshd_14_host_key_ed25519_with_certificate(sshd):
    assert sshd["hostkey"] == ["/etc/ssh/ssh_host_ed25519_key"]
    assert sshd.get("hostcertificate") == ["/etc/ssh/ssh_host_ed25519_key-cert.pub"]


def test_sshd_17_no_user_environment(sshd):
    assert one(sshd, "permituserenvironment") == "no"


def test_sshd_18_login_grace_time_30s(sshd):
    assert one(sshd, "logingracetime") == "30"


def test_sshd_19_max_auth_tries_low(sshd):
    assert int(one(sshd, "maxauthtries")) <= 3


def test_sshd_20_max_sessions_10(sshd):
    assert int(one(sshd, "maxsessions")) <= 10


def test_sshd_21_max_startups(sshd):
    assert one(sshd, "maxstartups") == "10:30:100"


def test_sshd_22_pubkey_authentication(sshd):
    assert one(sshd, "pubkeyauthentication") == "yes"


def test_sshd_23_ignore_rhosts(sshd):
    assert one(sshd, "ignorerhosts") == "yes"


def test_sshd_24_ignore_user_known_hosts(sshd):
    assert one(sshd, "ignoreuserknownhosts") == "yes"


def test_sshd_25_no_hostbased_authentication(sshd):
    assert one(sshd, "hostbasedauthentication") == "no"


def test_sshd_27_no_password_authentication(sshd):
    assert one(sshd, "passwordauthentication") == "no"


def test_sshd_28_no_empty_passwords(sshd):
    assert one(sshd, "permitemptypasswords") == "no"


def test_sshd_29_no_keyboard_interactive(sshd):
    assert one(sshd, "kbdinteractiveauthentication") == "no"


def test_sshd_30_no_kerberos(sshd):
    assert sshd.get("kerberosauthentication", ["no"]) == ["no"]


def test_sshd_33_no_gssapi(sshd):
    assert sshd.get("gssapiauthentication", ["no"]) == ["no"]


def test_sshd_35_no_tcp_keepalive(sshd):
    assert one(sshd, "tcpkeepalive") == "no"


def test_sshd_36_37_client_alive(sshd):
    assert int(one(sshd, "clientaliveinterval")) == 300
    assert int(one(sshd, "clientalivecountmax")) == 3


def test_sshd_38_no_tunnels(sshd):
    assert one(sshd, "permittunnel") == "no"


def test_sshd_39_tcp_forwarding_only_on_bastion_for_the_admins_login(sshd, host, host_entry,
                                                                     inventory):
    # ProxyJump needs direct-tcpip on the bastion only, for the admins' login only (R-GDPR-6):
    # no account forwards by default; on ops, sshd's Match for that login allows `local`.
    assert one(sshd, "allowtcpforwarding") == "no"
    login = inventory["ssh"]["login_user"]
    matched = host.check_output(f"sshd -T -C user={login},host=admin,addr=192.0.2.1")
    forwarding = re.search(r"^allowtcpforwarding (\S+)$", matched, re.M)
    assert forwarding is not None
    assert forwarding.group(1) == ("local" if host_entry["role"] == "ops" else "no")


def test_sshd_allow_groups_limits_logins_to_the_ssh_group(sshd):
    # CIS "sshd access is configured" (lynis SSH-7440): only members of the group log in.
    assert sshd["allowgroups"] == ["hosting-ssh"]


def test_sshd_40_no_agent_forwarding(sshd):
    assert one(sshd, "allowagentforwarding") == "no"


def test_sshd_41_no_gateway_ports(sshd):
    assert one(sshd, "gatewayports") == "no"


def test_sshd_42_no_x11_forwarding(sshd):
    assert one(sshd, "x11forwarding") == "no"


def test_sshd_44_45_no_motd_no_lastlog(sshd):
    assert one(sshd, "printmotd") == "no"
    assert one(sshd, "printlastlog") == "no"


def test_sshd_46_no_banner(sshd):
    assert one(sshd, "banner") == "none"


def test_sshd_47_no_debian_banner(sshd):
    assert sshd.get("debianbanner", ["no"]) == ["no"]


def test_sshd_48_moduli_at_least_2048_bits(host):
    out = host.check_output("awk '$5 < 2047 && $5 ~ /^[0-9]+$/ {print $5}' /etc/ssh/moduli")
    assert out == ""


def test_sshd_certificates_only(sshd):
    # R-GDPR-5: the user CA, principals per user, no authorized_keys, a KRL.
    assert one(sshd, "trustedusercakeys") == "/etc/ssh/user_ca.pub"
    assert one(sshd, "authorizedkeysfile") == "none"
    assert one(sshd, "authorizedprincipalsfile") == "/etc/ssh/auth_principals/%u"
    assert one(sshd, "revokedkeys") == "/etc/ssh/revoked_keys.krl"


def test_sshd_revoked_keys_file_exists(host):
    # A missing RevokedKeys file makes sshd refuse every public-key login.
    assert host.file("/etc/ssh/revoked_keys.krl").exists


def test_sshd_principals_follow_inventory(host, host_entry, inventory):
    user = inventory["ssh"]["login_user"]
    expected = sorted(p for p, roles in inventory["ssh"]["principals"].items()
                      if host_entry["role"] in roles)
    content = host.file(f"/etc/ssh/auth_principals/{user}").content_string
    assert sorted(content.split()) == expected
