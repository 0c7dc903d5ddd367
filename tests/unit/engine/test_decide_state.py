"""Decisions for packages, services, sysctls, users and probes: plain data in, actions out."""
from __future__ import annotations

import pytest

from engine.decide import (
    Action,
    Note,
    decide_packages,
    decide_probe,
    decide_service,
    decide_sysctl,
    decide_user,
)
from engine.facts import MISSING, CommandFact, PathFact, UnitFact, UserFact
from engine.resources import Packages, Probe, Service, Sysctl, User


def argv(action: Action | Note) -> list[str]:
    assert isinstance(action, Action)
    return list(action.op["argv"])


# --- packages -------------------------------------------------------------------------------------


def test_decide_packages_all_installed_does_nothing() -> None:
    assert decide_packages(Packages(("nftables", "sudo")), {"nftables": "1.1", "sudo": "1.9"}) == []


def test_decide_packages_missing_ones_installed_through_timeout_without_prompts() -> None:
    [action] = decide_packages(Packages(("nftables", "sudo", "needrestart")),
                               {"nftables": "1.1", "sudo": None})
    assert action.summary == "install sudo needrestart"
    script = argv(action)[2]
    assert "timeout 300 apt-get update" in script
    assert "timeout 900 apt-get install -y -q --no-install-recommends" in script
    assert script.endswith(" -- sudo needrestart")
    assert action.op["env"]["DEBIAN_FRONTEND"] == "noninteractive"


def test_decide_packages_absent_purges_only_installed_ones() -> None:
    [action] = decide_packages(Packages(("telnet", "rsh-client"), present=False),
                               {"telnet": "0.17", "rsh-client": None})
    assert action.summary == "purge telnet"
    assert argv(action)[2].endswith("apt-get purge -y -q -- telnet")
    assert decide_packages(Packages(("telnet",), present=False), {"telnet": None}) == []


# --- services -------------------------------------------------------------------------------------


def test_decide_service_enabled_and_running_does_nothing() -> None:
    unit = UnitFact("loaded", "enabled", "active")
    assert decide_service(Service("ssh.service"), unit) == []


def test_decide_service_disabled_and_stopped_is_enabled_and_started_in_one_command() -> None:
    [action] = decide_service(Service("nftables.service"), UnitFact("loaded", "disabled",
                                                                    "inactive"))
    assert argv(action) == ["systemctl", "enable", "--now", "--", "nftables.service"]


def test_decide_service_not_installed_yet_is_enabled_after_the_package_install() -> None:
    [action] = decide_service(Service("systemd-timesyncd.service"), UnitFact())
    assert argv(action) == ["systemctl", "enable", "--now", "--",
                            "systemd-timesyncd.service"]


def test_decide_service_static_unit_needs_no_enable() -> None:
    assert decide_service(Service("x.service"), UnitFact("loaded", "static", "active")) == []


def test_decide_service_running_dont_care_only_enables() -> None:
    [action] = decide_service(Service("unattended-upgrades.service", running=None),
                              UnitFact("loaded", "disabled", "inactive"))
    assert argv(action) == ["systemctl", "enable", "--", "unattended-upgrades.service"]


def test_decide_service_container_reason_is_a_note_not_an_action() -> None:
    out = decide_service(Service("systemd-timesyncd.service", running=None,
                                 reason="no time sync in a container"),
                         UnitFact("loaded", "enabled", "inactive"))
    assert out == [Note("service:systemd-timesyncd.service", "no time sync in a container")]


def test_decide_service_unwanted_and_running_is_stopped_and_masked() -> None:
    [action] = decide_service(Service("rpcbind.service", None, None, masked=True),
                              UnitFact("loaded", "enabled", "active"))
    assert argv(action) == ["systemctl", "mask", "--now", "--", "rpcbind.service"]


@pytest.mark.parametrize("unit", [UnitFact(), UnitFact("masked", "masked", "inactive")])
def test_decide_service_unwanted_absent_or_masked_does_nothing(unit: UnitFact) -> None:
    assert decide_service(Service("cups.service", None, None, masked=True), unit) == []


def test_decide_service_masked_but_wanted_is_unmasked_first() -> None:
    out = decide_service(Service("ssh.service"), UnitFact("masked", "masked", "inactive"))
    assert [argv(a) for a in out] == [["systemctl", "unmask", "--", "ssh.service"],
                                      ["systemctl", "enable", "--now", "--", "ssh.service"]]


def test_decide_service_wanted_stopped_and_disabled_when_running() -> None:
    out = decide_service(Service("x.service", enabled=False, running=False),
                         UnitFact("loaded", "enabled", "active"))
    assert [argv(a) for a in out] == [["systemctl", "disable", "--", "x.service"],
                                      ["systemctl", "stop", "--", "x.service"]]


# --- sysctl ---------------------------------------------------------------------------------------


def test_decide_sysctl_same_value_does_nothing() -> None:
    assert decide_sysctl(Sysctl("net.ipv4.ip_forward", "0"), "0", False) == []


def test_decide_sysctl_other_value_is_set() -> None:
    [action] = decide_sysctl(Sysctl("net.ipv4.conf.all.rp_filter", "1"), "0", True)
    assert action.op == {"kind": "sysctl", "key": "net.ipv4.conf.all.rp_filter", "value": "1"}


def test_decide_sysctl_multi_value_compared_whitespace_normalised() -> None:
    assert decide_sysctl(Sysctl("net.ipv4.ip_local_port_range", "32768   60999"),
                         "32768 60999", False) == []


def test_decide_sysctl_kernel_key_in_a_container_is_skipped_with_a_note() -> None:
    [note] = decide_sysctl(Sysctl("kernel.kptr_restrict", "2"), "1", True)
    assert isinstance(note, Note) and note.text == "kernel.kptr_restrict"
    assert "container" in str(note)


def test_decide_sysctl_kernel_key_on_a_vm_is_set() -> None:
    [action] = decide_sysctl(Sysctl("kernel.kptr_restrict", "2"), "1", False)
    assert isinstance(action, Action)


def test_decide_sysctl_key_missing_on_this_kernel_is_a_note() -> None:
    [note] = decide_sysctl(Sysctl("net.ipv6.conf.all.forwarding", "0"), None, False)
    assert isinstance(note, Note) and "not present" in str(note)


# --- users ----------------------------------------------------------------------------------------


def test_decide_user_missing_is_created_as_a_system_user_with_its_group() -> None:
    [action] = decide_user(User("villeparisis", "/srv/villeparisis", groups=("www-data",)),
                           UserFact())
    assert argv(action) == ["useradd", "--system", "--home-dir", "/srv/villeparisis",
                            "--create-home", "--shell", "/usr/sbin/nologin", "--user-group",
                            "--groups", "www-data", "--", "villeparisis"]


def test_decide_user_as_wanted_does_nothing() -> None:
    fact = UserFact(True, "/srv/s", "/usr/sbin/nologin", ("s", "www-data"))
    assert decide_user(User("s", "/srv/s", groups=("www-data",)), fact) == []


def test_decide_user_other_shell_and_missing_group_one_usermod() -> None:
    fact = UserFact(True, "/srv/s", "/bin/bash", ("s",))
    [action] = decide_user(User("s", "/srv/s", groups=("www-data",)), fact)
    assert argv(action) == ["usermod", "--shell", "/usr/sbin/nologin", "--append", "--groups",
                            "www-data", "--", "s"]


# --- probes ---------------------------------------------------------------------------------------

PROBE = Probe("nftables-live", ("sh", "-c", "nft -s list ruleset"),
              "/var/lib/hosting/nftables.applied", notify=("reload-nftables",))


def recorded(text: str) -> PathFact:
    return PathFact(True, "file", 0o644, "root", "root", "", text.encode())


def test_decide_probe_live_state_as_recorded_does_nothing() -> None:
    assert decide_probe(PROBE, CommandFact(0, "abc  -\n"), recorded("abc  -\n")) == []


def test_decide_probe_drift_notifies_the_handler_and_shows_the_drift_as_a_diff() -> None:
    live = "chain input {\n  tcp dport 22 accept\n  tcp dport 8080 accept\n}\n"
    [action] = decide_probe(PROBE, CommandFact(0, live), recorded(live.replace(
        "  tcp dport 8080 accept\n", "")))
    assert action.op == {"kind": "noop"}
    assert action.notify == ("reload-nftables",)
    assert "-  tcp dport 8080 accept\n" in action.diff
    assert action.diff.startswith("--- nftables-live (live)\n")


def test_decide_probe_never_recorded_notifies() -> None:
    [action] = decide_probe(PROBE, CommandFact(0, "abc  -\n"), MISSING)
    assert "no record" in action.summary


def test_decide_probe_failing_command_notifies() -> None:
    assert decide_probe(PROBE, CommandFact(1, ""), recorded(""))
