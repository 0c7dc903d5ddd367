"""Converge one host: system facts -> the role, once -> facts -> decisions -> (check: report |
apply: execute what differs).

One agent session per host (engine/remote.py: one SSH channel, one sudo, one python3 start):
on it, a no-op costs two round trips (the system facts the role is built with, then the facts
its resources need), a host with changes a third (apply everything that differs, handlers
included). The role is called exactly once per host and run, with the real system facts.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine import remote
from engine.decide import OpResult, Plan, decide
from engine.facts import SystemFacts
from engine.primitives import request_for
from engine.remote import Session
from engine.role import Desired


@dataclass
class HostResult:
    host: str
    check: bool = False
    plan: Plan | None = None
    outcomes: list[OpResult] = field(default_factory=list)  # what the agent executed, typed
    error: str = ""  # the host could not be converged at all (connection, facts, agent)
    seconds: float = 0.0
    round_trips: int = 0  # requests answered on the host's one agent session

    @property
    def changed(self) -> int:
        """Check mode: resources that would change. Apply: resources whose operations all
        succeeded and at least one reported a change (the agent's own word)."""
        if self.plan is None:
            return 0
        if self.check:
            return len(self.plan.changed)
        ok: dict[str, bool] = {}
        changed: set[str] = set()
        for r in self.outcomes:
            if r.key:
                ok[r.key] = ok.get(r.key, True) and r.ok
                if r.changed:
                    changed.add(r.key)
        return sum(1 for k, v in ok.items() if v and k in changed)

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


def converge(host: str, open_session: Callable[[], Session], build: Build,
             check: bool = False) -> HostResult:
    """Never raises: whatever goes wrong on this host is in the result, so the others go on."""
    start = time.monotonic()
    result = HostResult(host=host, check=check)
    try:
        session = open_session()
        try:
            _converge(session, build, result)
        finally:
            session.close()
    except Exception as exc:  # noqa: BLE001 - one host's failure must not stop the others
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.monotonic() - start
    return result


def _converge(session: Session, build: Build, result: HostResult) -> None:
    system = remote.system(session)
    result.round_trips += 1
    desired = build(system)
    # Content comes back in check mode only (for the diffs), sensitive files' never.
    facts = remote.gather(session, request_for(desired.resources, check=result.check), system)
    result.round_trips += 1
    plan = decide(desired.resources, desired.handlers, facts)
    result.plan = plan
    if result.check or plan.is_noop:
        return
    result.outcomes = remote.apply(session, plan)
    result.round_trips += 1
