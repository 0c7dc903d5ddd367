"""The `Service` primitive: a systemd unit's enabled/running/masked state.

Facts: LoadState, UnitFileState and ActiveState (`systemctl show`). Decision: the systemctl
commands that close the gap. On-host op: `command`.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.facts import FactRequest, HostFacts, UnitFact
from engine.primitives.common import Action, Decision, Note, command_op

OPS = ("command",)
# Unit file states that need no `systemctl enable` (static units cannot be enabled at all).
ENABLED_STATES = frozenset({"enabled", "enabled-runtime", "static", "indirect", "generated",
                            "alias", "linked", "transient"})
RUNNING_STATES = frozenset({"active", "activating", "reloading"})


@dataclass(frozen=True)
class Service:
    """`enabled`/`running` None means "don't care". `masked=True` means: if the unit exists,
    stop it and mask it (the minimal set of services); a unit not installed is left alone."""

    unit: str
    enabled: bool | None = True
    running: bool | None = True
    masked: bool = False
    reason: str = ""  # why a state is not wanted, shown when it matters (container skips)

    @property
    def key(self) -> str:
        return f"service:{self.unit}"


RESOURCE = Service


def request(r: Service, check: bool) -> FactRequest:
    return FactRequest(units=(r.unit,))


def decide_service(r: Service, unit: UnitFact) -> Decision:
    exists = unit.load_state != "not-found"
    is_masked = unit.load_state == "masked" or unit.unit_file_state == "masked"
    running = unit.active_state in RUNNING_STATES
    notes: Decision = [Note(r.key, r.reason)] if r.reason else []
    if r.masked:
        if not exists or (is_masked and not running):
            return notes
        return [*notes, Action(r.key, f"stop and mask {r.unit} (not in the minimal set)",
                               command_op(["systemctl", "mask", "--now", "--", r.unit]))]
    out: Decision = list(notes)
    if is_masked and (r.enabled or r.running):
        out.append(Action(r.key, f"unmask {r.unit}",
                          command_op(["systemctl", "unmask", "--", r.unit])))
    want_enable = r.enabled is True and (unit.unit_file_state not in ENABLED_STATES or is_masked)
    want_start = r.running is True and not running
    if want_enable and want_start:
        out.append(Action(r.key, f"enable and start {r.unit}",
                          command_op(["systemctl", "enable", "--now", "--", r.unit])))
    elif want_enable:
        out.append(Action(r.key, f"enable {r.unit}",
                          command_op(["systemctl", "enable", "--", r.unit])))
    elif want_start:
        out.append(Action(r.key, f"start {r.unit}",
                          command_op(["systemctl", "start", "--", r.unit])))
    if r.enabled is False and unit.unit_file_state in ("enabled", "enabled-runtime"):
        out.append(Action(r.key, f"disable {r.unit}",
                          command_op(["systemctl", "disable", "--", r.unit])))
    if r.running is False and running:
        out.append(Action(r.key, f"stop {r.unit}", command_op(["systemctl", "stop", "--", r.unit])))
    return out


def decide(r: Service, facts: HostFacts) -> Decision:
    return decide_service(r, facts.units.get(r.unit, UnitFact()))
