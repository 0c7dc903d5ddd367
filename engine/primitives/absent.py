"""The `Absent` primitive: a path that must not exist (a superseded drop-in, say).

Facts: the path's attributes (its content in check mode, for the diff). Decision: remove it when
it exists. On-host op: `remove` (refuses a directory; reports no change when the path was
already gone).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.facts import FactRequest, HostFacts, PathFact
from engine.primitives.common import Action, Decision
from engine.primitives.file import file_diff

OPS = ("remove",)


@dataclass(frozen=True)
class Absent:
    path: str
    notify: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"absent:{self.path}"


RESOURCE = Absent


def request(r: Absent, check: bool) -> FactRequest:
    return FactRequest(paths=(r.path,), contents=(r.path,) if check else ())


def decide_absent(r: Absent, fact: PathFact) -> Decision:
    if not fact.exists:
        return []
    return [Action(r.key, f"remove {r.path}", {"kind": "remove", "path": r.path},
                   file_diff(r.path, fact, b"") if fact.kind == "file" else "", r.notify)]


def decide(r: Absent, facts: HostFacts) -> Decision:
    return decide_absent(r, facts.path(r.path))
