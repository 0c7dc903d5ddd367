"""The `Directory` primitive: a directory with that mode and owner.

Facts: the path's attributes. Decision: create it, or fix its mode/owner. On-host ops: `mkdir`
(parents included) and `attrs`.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.facts import FactRequest, HostFacts, PathFact
from engine.primitives.common import Action, Decision, attrs_delta, attrs_op

OPS = ("mkdir", "attrs")


@dataclass(frozen=True)
class Directory:
    path: str
    mode: int = 0o755
    owner: str = "root"
    group: str = "root"

    @property
    def key(self) -> str:
        return f"dir:{self.path}"


RESOURCE = Directory


def request(r: Directory, check: bool) -> FactRequest:
    return FactRequest(paths=(r.path,))


def decide_directory(r: Directory, fact: PathFact) -> Decision:
    op = {**attrs_op(r.path, r.mode, r.owner, r.group), "kind": "mkdir"}
    if not fact.exists:
        return [Action(r.key, f"create directory {r.path} (mode {r.mode:04o})", op)]
    if fact.kind != "dir":
        return [Action(r.key, f"{r.path} is a {fact.kind}, not a directory", op)]
    delta = attrs_delta(fact, r.mode, r.owner, r.group)
    if delta:
        return [Action(r.key, f"chmod/chown {r.path} ({', '.join(delta)})",
                       attrs_op(r.path, r.mode, r.owner, r.group))]
    return []


def decide(r: Directory, facts: HostFacts) -> Decision:
    return decide_directory(r, facts.path(r.path))
