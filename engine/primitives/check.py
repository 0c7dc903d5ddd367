"""The `Check` primitive: a state only a command can tell (a site's secrets, its database and
user, the MariaDB baseline, the encrypted private files, a backup identity), with the command
that makes it so.

The check command is read-only and says by its exit status:

    0                   in state: nothing to do
    3 (WOULD_CHANGE)    not in state: `apply` must run (its stdout says why, shown by --check)
    anything else       the check itself failed (its stderr is reported)

Facts: the check's exit status, stdout and stderr, run while the facts are read. Decision:
nothing on 0; an action otherwise. A check may fail while the facts are read only because an
earlier action of the same run provides what it needs (on a fresh host the helper it runs is
not installed yet): so the action's on-host op, `check`, runs the check again at its place in
the plan, runs `apply` only on WOULD_CHANGE, then checks once more; it fails (with the check's
stderr) on any other status, and reports `changed` only when `apply` ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.facts import CommandFact, FactRequest, HostFacts
from engine.primitives.common import Action, Decision
from onhost.agent import WOULD_CHANGE

OPS = ("check",)


@dataclass(frozen=True)
class Check:
    name: str
    check: tuple[str, ...]  # read-only; exit 0 in state, WOULD_CHANGE (3) not in state
    apply: tuple[str, ...]  # makes it so; runs only after the check said WOULD_CHANGE
    summary: str = ""  # what `apply` does, for humans
    notify: tuple[str, ...] = ()
    timeout: int = 300

    @property
    def key(self) -> str:
        return f"check:{self.name}"


RESOURCE = Check


def request(r: Check, check: bool) -> FactRequest:
    return FactRequest(commands=((r.name, r.check),))


def check_op(r: Check) -> dict[str, Any]:
    return {"kind": "check", "check": list(r.check), "apply": list(r.apply),
            "timeout": r.timeout}


def decide_check(r: Check, out: CommandFact | None) -> Decision:
    if out is not None and out.rc == 0:
        return []
    what = r.summary or r.name
    if out is not None and out.rc == WOULD_CHANGE:
        said = out.out.strip()
        diff = "".join(f"  {line}\n" for line in said.splitlines())
        return [Action(r.key, what, check_op(r), f"--- {r.name}: not in state\n{diff}",
                       r.notify)]
    status = "not run" if out is None else f"exited {out.rc}"
    detail = (out.err or out.out).strip()[-300:] if out is not None else ""
    return [Action(r.key, f"{what} (its check {status} before this run's actions"
                   f"{': ' + detail if detail else ''}; checked again when applied)",
                   check_op(r), "", r.notify)]


def decide(r: Check, facts: HostFacts) -> Decision:
    return decide_check(r, facts.commands.get(r.name))
