"""The Sysctl primitive's decision (engine/primitives/sysctl.py)."""
from __future__ import annotations

from engine.primitives.common import Action, Note
from engine.primitives.sysctl import Sysctl, decide_sysctl


def argv(action: Action | Note) -> list[str]:
    assert isinstance(action, Action)
    return list(action.op["argv"])


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
