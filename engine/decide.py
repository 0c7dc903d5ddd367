"""Decisions for a whole host: desired state + facts -> the Plan that makes the host match.

Each primitive decides for its own resources (engine/primitives/<primitive>.py: `decide`);
`decide()` walks a host's resources in the roles' order, merges every package install into one
apt-get run (at the place of the first Packages resource) and attaches each handler to the
actions that notify it. `OpResult` is what the agent reports for each executed operation. Pure
functions, tested with plain data, no SSH (tests/unit/engine).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.facts import HostFacts
from engine.primitives import Action, Decision, Note, Resource, command_op, decide_one
from engine.primitives.packages import Packages, merged_install
from engine.resources import Handler

__all__ = ["Action", "Decision", "HandlerRun", "Note", "OpResult", "Plan", "decide",
           "decide_one"]


@dataclass(frozen=True)
class HandlerRun:
    name: str
    op: Mapping[str, Any]
    after: tuple[int, ...]  # indexes of the actions that notify it


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    handlers: tuple[HandlerRun, ...] = ()
    notes: tuple[Note, ...] = ()
    changed: tuple[str, ...] = ()  # resource keys with at least one action
    unchanged: tuple[str, ...] = ()

    @property
    def is_noop(self) -> bool:
        return not self.actions


@dataclass(frozen=True)
class OpResult:
    """One operation the agent executed (an action of the plan, or a handler), as it reported
    it: `changed` is the operation's own word (a write always changes; `apt` only when a
    package was really installed; `check` only when its apply ran; `remove` only when the
    path existed). `key`: the resource the action came from ("" for a handler)."""

    summary: str
    ok: bool
    changed: bool = False
    error: str = ""
    skipped: bool = False  # not run: an earlier action failed
    key: str = ""
    output: str = ""

    @classmethod
    def from_reply(cls, summary: str, reply: Mapping[str, Any], key: str = "") -> OpResult:
        return cls(summary, bool(reply["ok"]), bool(reply.get("changed", False)),
                   reply.get("error", ""), bool(reply.get("skipped", False)), key,
                   reply.get("output", ""))


def op_results(plan: Plan, reply: Mapping[str, Any]) -> list[OpResult]:
    """The agent's apply reply, typed: one result per action, then one per handler that ran."""
    out = [OpResult.from_reply(a.summary, r, a.key)
           for a, r in zip(plan.actions, reply["results"], strict=True)]
    out += [OpResult.from_reply(f"handler {h['name']}", h) for h in reply["handlers"]
            if h["ran"]]
    return out


def decide(resources: Sequence[Resource], handlers: Sequence[Handler],
           facts: HostFacts) -> Plan:
    """Every action a host needs, in the roles' order, with one apt-get run for all missing
    packages (at the place of the first package resource) and each notified handler once."""
    keys = [r.key for r in resources]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"a resource is declared twice: {', '.join(dupes)}")
    actions: list[Action] = []
    notes: list[Note] = []
    changed: list[str] = []
    install_at: int | None = None
    installs: list[Packages] = []
    for r in resources:
        decision = decide_one(r, facts)
        notes += [d for d in decision if isinstance(d, Note)]
        acts = [d for d in decision if isinstance(d, Action)]
        if acts:
            changed.append(r.key)
        if isinstance(r, Packages) and r.present:
            if install_at is None:
                install_at = len(actions)
            installs.append(r)
            continue
        actions += acts
    install = merged_install(installs, facts.packages)
    if install is not None and install_at is not None:
        actions.insert(install_at, install)
    known = {h.name for h in handlers}
    for a in actions:
        unknown = set(a.notify) - known
        if unknown:
            raise ValueError(f"{a.key} notifies unknown handler(s) {sorted(unknown)}")
    runs = []
    for h in handlers:
        after = tuple(i for i, a in enumerate(actions) if h.name in a.notify)
        if after:
            runs.append(HandlerRun(h.name, command_op(h.argv, h.timeout), after))
    unchanged = [k for k in keys if k not in changed]
    return Plan(tuple(actions), tuple(runs), tuple(notes), tuple(changed), tuple(unchanged))
