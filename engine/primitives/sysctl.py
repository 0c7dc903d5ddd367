"""The `Sysctl` primitive: a kernel parameter's running value (persisting it is a File in
/etc/sysctl.d).

Facts: the value read from /proc/sys (None: not on this kernel). Decision: write it, or a Note
when it cannot be set (a non-net key in a container, DESIGN.md). On-host op: `sysctl`.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.facts import FactRequest, HostFacts
from engine.primitives.common import Action, Decision, Note

OPS = ("sysctl",)
CONTAINER_SYSCTL = ("sysctls skipped in a container (systemd-detect-virt -c): only net.* can "
                    "be set there")


@dataclass(frozen=True)
class Sysctl:
    key_name: str
    value: str
    notify: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"sysctl:{self.key_name}"

    @property
    def container_safe(self) -> bool:
        return self.key_name.startswith("net.")


RESOURCE = Sysctl


def request(r: Sysctl, check: bool) -> FactRequest:
    return FactRequest(sysctls=(r.key_name,))


def decide_sysctl(r: Sysctl, current: str | None, in_container: bool) -> Decision:
    if in_container and not r.container_safe:
        return [Note(r.key, r.key_name, CONTAINER_SYSCTL)]
    if current is None:
        return [Note(r.key, r.key_name, "sysctls skipped: not present on this kernel")]
    wanted = " ".join(r.value.split())
    if current == wanted:
        return []
    return [Action(r.key, f"sysctl {r.key_name} {current} -> {wanted}",
                   {"kind": "sysctl", "key": r.key_name, "value": wanted}, "", r.notify)]


def decide(r: Sysctl, facts: HostFacts) -> Decision:
    return decide_sysctl(r, facts.sysctls.get(r.key_name), facts.system.in_container)
