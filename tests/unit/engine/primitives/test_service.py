"""The Service primitive's decision (engine/primitives/service.py)."""
from __future__ import annotations

import pytest

from engine.facts import UnitFact
from engine.primitives.common import Action, Note
from engine.primitives.service import Service, decide_service


def argv(action: Action | Note) -> list[str]:
    assert isinstance(action, Action)
    return list(action.op["argv"])


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
