"""The collectors' reading of host output, through a fake connection (no SSH): what each
command prints on a Debian 13 host, as the collectors parse it."""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from audit import collect

HERE = Path(__file__).resolve().parent


@dataclass
class Result:
    exited: int
    stdout: str
    stderr: str = ""


class FakeHost:
    """Answers `sudo -n ARGV` by the first argument words; records what was run."""

    def __init__(self, answers: dict[str, Result]) -> None:
        self.answers = answers
        self.ran: list[list[str]] = []

    def run(self, command: str, **_kw: object) -> Result:
        argv = shlex.split(command)[2:]  # after "sudo -n"
        self.ran.append(argv)
        for prefix, result in self.answers.items():
            if " ".join(argv).startswith(prefix):
                return result
        return Result(1, "", f"{argv[0]}: not found")


SSHD_T = ("passwordauthentication no\nkbdinteractiveauthentication no\n"
          "authorizedkeysfile none\npermitrootlogin no\ntrustedusercakeys /etc/ssh/user_ca.pub\n"
          "authorizedprincipalsfile /etc/ssh/auth_principals/%u\n"
          "revokedkeys /etc/ssh/revoked_keys.krl\n")


def common(prod) -> dict[str, Result]:
    nft = (HERE / "nft_prod_web_villeparisis.json").read_text()
    return {
        "sshd -T": Result(0, SSHD_T),
        f"cat /etc/ssh/auth_principals/{prod.login_user}": Result(0, "sysadmin\nci-deploy\n"),
        "cat /etc/ssh/user_ca.pub": Result(0, prod.user_ca_public_key + "\n"),
        "ssh-keygen -Q -l -f": Result(0, "# KRL version 0\nserial: 4\n"),
        "nft -j list ruleset": Result(0, nft),
        "cat /etc/debian_version": Result(0, "13.2\n"),
        "apt-config shell": Result(0, "V='1'\n"),
        "dpkg-query -W -f=${Status} unattended-upgrades": Result(0, "install ok installed"),
        "systemctl is-enabled": Result(0, "enabled\n"),
    }


def test_host_facts_web_host_read_and_grants_redacted(prod) -> None:
    answers = common(prod) | {
        "findmnt -J": Result(0, json.dumps({"filesystems": [
            {"target": "/srv/villeparisis/private", "source": "/srv/villeparisis/private.enc",
             "fstype": "fuse.gocryptfs"}]})),
        "dpkg-query -W -f=${Package} ${Version}": Result(0, "php8.4-fpm 8.4.11-1\n"),
        "mariadb --version": Result(0, "mariadb from 11.8.3-MariaDB\n"),
        "mariadb --protocol=socket -N -B -e SELECT": Result(
            0, "root\tlocalhost\nvilleparisis\tlocalhost\n"),
        "mariadb --protocol=socket -N -B -e SHOW GRANTS FOR 'villeparisis'": Result(
            0, "GRANT USAGE ON *.* TO `villeparisis`@`localhost` IDENTIFIED BY PASSWORD "
               "'*0123456789ABCDEF0123456789ABCDEF01234567'\n"),
        "mariadb --protocol=socket -N -B -e SHOW GRANTS FOR 'root'": Result(
            0, "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION\n"),
    }
    d = collect.host_facts(prod, FakeHost(answers), "web-villeparisis")
    assert d["principals"] == ["sysadmin", "ci-deploy"] and d["krl_serials"] == ["4"]
    assert d["sshd"]["authorizedkeysfile"] == "none" and d["debian_version"] == "13.2"
    assert d["updates"] == {"periodic": "1", "installed": True, "timer": "enabled"}
    assert d["php_version"] == "8.4.11" and d["gocryptfs"][0]["fstype"] == "fuse.gocryptfs"
    assert d["private_files"] == {"villeparisis": "/srv/villeparisis/private"}
    assert [g["account"] for g in d["grants"]] == [["root", "localhost"],
                                                   ["villeparisis", "localhost"]]
    assert "0123456789ABCDEF" not in json.dumps(d)


def test_host_facts_storage_host_reads_each_sites_forced_command(prod) -> None:
    host = FakeHost(common(prod) | {
        "cat /etc/ssh/auth_principals/": Result(0, 'restrict,command="... -m backup.serve '
                                                   '--site villeparisis" backup-villeparisis\n'),
        "grep -c -- --append-only": Result(0, "1\n"),
    })
    d = collect.host_facts(prod, host, "backup-a")
    assert d["storage"]["append_only"] is True and d["storage"]["password_auth"] == "no"
    assert "backup.serve" in d["storage"]["principals"]["villeparisis"]


def test_per_host_unreachable_host_is_its_entry_others_read(prod) -> None:
    class Access:
        def connection(self, host):
            if host.name == "proxy":
                raise OSError("No route to host")
            return FakeHost(common(prod))

    data = collect.per_host(prod, Access(), ["proxy", "ops"],
                            lambda conn, name: collect.host_facts(prod, conn, name))
    assert data["proxy"] == {"error": "OSError: No route to host"}
    assert data["ops"]["principals"] == ["sysadmin", "ci-deploy"]


def test_restic_argv_storage_tier_runs_as_the_sites_storage_user_password_named() -> None:
    argv = collect.restic_argv("villeparisis", "a", "snapshots", "--json")
    assert argv[:4] == ["runuser", "-u", "backup-villeparisis", "--"]
    pw = argv.index("--password-file")
    assert argv[pw + 1] == "/etc/hosting/backup-storage/villeparisis.password"
    assert "--no-lock" in argv and argv[-2:] == ["snapshots", "--json"]
    local = collect.restic_argv("villeparisis", "local", "snapshots")
    assert local[0] == "env" and "runuser" not in local
