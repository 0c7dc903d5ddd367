"""Converge one host: facts -> decisions -> (check: report | apply: execute what differs).

Round trips: one to read the facts (a second only if a role's resources changed identity with
the facts, which the rule in engine.resources forbids), none more on a no-op, one to apply
everything that differs (handlers included).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine import remote
from engine.decide import Plan, decide
from engine.facts import SystemFacts, missing_from, request_for
from engine.remote import Runner
from engine.role import Desired


@dataclass
class Outcome:
    """One executed action or handler."""

    summary: str
    ok: bool
    error: str = ""
    skipped: bool = False


@dataclass
class HostResult:
    host: str
    check: bool = False
    plan: Plan | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    error: str = ""  # the host could not be converged at all (connection, facts, agent)
    seconds: float = 0.0
    round_trips: int = 0

    @property
    def changed(self) -> int:
        if self.plan is None:
            return 0
        if self.check:
            return len(self.plan.changed)
        return len(self._changed_ok())

    def _changed_ok(self) -> list[str]:
        assert self.plan is not None
        ok: dict[str, bool] = {}
        for action, outcome in zip(self.plan.actions, self.outcomes, strict=False):
            ok[action.key] = ok.get(action.key, True) and outcome.ok
        return [k for k, v in ok.items() if v]

    @property
    def unchanged(self) -> int:
        return len(self.plan.unchanged) if self.plan is not None else 0

    @property
    def failed(self) -> int:
        return (1 if self.error else 0) + sum(1 for o in self.outcomes
                                               if not o.ok and not o.skipped)

    @property
    def not_run(self) -> int:
        return sum(1 for o in self.outcomes if o.skipped)

    @property
    def ok(self) -> bool:
        return self.failed == 0


Build = Callable[[SystemFacts], Desired]


def converge(host: str, open_runner: Callable[[], Runner], build: Build,
             check: bool = False) -> HostResult:
    """Never raises: whatever goes wrong on this host is in the result, so the others go on."""
    start = time.monotonic()
    result = HostResult(host=host, check=check)
    try:
        runner = open_runner()
        _converge(runner, build, result)
    except Exception as exc:  # noqa: BLE001 - one host's failure must not stop the others
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.monotonic() - start
    return result


def _converge(runner: Runner, build: Build, result: HostResult) -> None:
    probe = build(SystemFacts())
    # Content comes back in check mode only (for the diffs), sensitive files' never.
    facts = remote.gather(runner, request_for(probe.resources, check=result.check))
    result.round_trips = 1
    desired = build(facts.system)
    extra = missing_from(request_for(desired.resources, check=result.check), facts)
    if not extra.is_empty():
        facts = facts.merged(remote.gather(runner, extra))
        result.round_trips += 1
    plan = decide(desired.resources, desired.handlers, facts)
    result.plan = plan
    if result.check or plan.is_noop:
        return
    reply = remote.apply(runner, plan)
    result.round_trips += 1
    result.outcomes = outcomes(plan, reply)


def outcomes(plan: Plan, reply: dict[str, Any]) -> list[Outcome]:
    out = [Outcome(a.summary, r["ok"], r.get("error", ""), r.get("skipped", False))
           for a, r in zip(plan.actions, reply["results"], strict=False)]
    for h in reply["handlers"]:
        if h["ran"]:
            out.append(Outcome(f"handler {h['name']}", h["ok"], h.get("error", "")))
    return out
