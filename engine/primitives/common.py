"""What every primitive's decision returns: Actions (an operation the agent runs) and Notes (a
step knowingly not taken), plus the helpers several primitives share."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.facts import PathFact


@dataclass(frozen=True)
class Action:
    key: str  # the resource it comes from
    summary: str  # one line for humans: "write /etc/ssh/sshd_config (content)"
    op: Mapping[str, Any]  # what the agent executes: op["kind"] names an onhost/agent.py OPS entry
    diff: str = ""
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class Note:
    """A step knowingly not taken. Notes sharing a `group` are reported on one line."""

    key: str
    text: str
    group: str = ""

    def __str__(self) -> str:
        return f"{self.group}: {self.text}" if self.group else self.text


Decision = list[Action | Note]


def command_op(argv: Sequence[str], timeout: int = 300,
               env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The agent's `command` op: run argv, fail on a non-zero exit (services, users, handlers)."""
    op: dict[str, Any] = {"kind": "command", "argv": list(argv), "timeout": timeout}
    if env:
        op["env"] = dict(env)
    return op


def attrs_delta(old: PathFact, mode: int, owner: str, group: str) -> list[str]:
    """What differs in mode and ownership, said for humans ([] when nothing does)."""
    delta = []
    if old.mode != mode:
        delta.append(f"mode {old.mode:04o}->{mode:04o}")
    if (old.owner, old.group) != (owner, group):
        delta.append(f"owner {old.owner}:{old.group}->{owner}:{group}")
    return delta


def attrs_op(path: str, mode: int, owner: str, group: str) -> dict[str, Any]:
    return {"kind": "attrs", "path": path, "mode": mode, "owner": owner, "group": group}
