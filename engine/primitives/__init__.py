"""The engine's primitives, one module each: the resource a role declares, the facts it needs
read (`request`), its decision (`decide`: facts -> Actions and Notes) and the names of the
on-host operations its actions use (`OPS`, each a function in onhost/agent.py's OPS table,
which stays one stdlib-only file sent over SSH; tests/unit/engine/primitives/test_registry.py
fails when the two sides stop pairing).

A new primitive is a new module here, listed in MODULES, plus its op in onhost/agent.py.
"""
from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from engine.facts import FactRequest, HostFacts
from engine.primitives import absent, check, directory, file, packages, probe, service, sysctl, user
from engine.primitives.common import Action, Decision, Note, command_op

MODULES: tuple[ModuleType, ...] = (file, absent, directory, packages, service, sysctl, user,
                                   probe, check)
BY_TYPE: dict[type, ModuleType] = {m.RESOURCE: m for m in MODULES}

Resource = (file.File | absent.Absent | directory.Directory | packages.Packages
            | service.Service | sysctl.Sysctl | user.User | probe.Probe | check.Check)

__all__ = ["MODULES", "Action", "Decision", "Note", "Resource", "command_op", "decide_one",
           "module_for", "request_for"]


def module_for(r: object) -> ModuleType:
    try:
        return BY_TYPE[type(r)]
    except KeyError:
        raise TypeError(f"unknown resource {r!r}") from None


def request_for(resources: Iterable[Resource], check: bool = False) -> FactRequest:
    """What to read for `resources`, each primitive saying its part. File content travels back
    only where needed (probe records; in check mode, the files a diff shows), never a sensitive
    file's, whatever another resource on the same path asks."""
    resources = list(resources)
    parts = [module_for(r).request(r, check) for r in resources]
    secret = {r.path for r in resources if isinstance(r, file.File) and r.sensitive}
    return FactRequest.union(parts, secret=secret)


def decide_one(r: Resource, facts: HostFacts) -> Decision:
    decision: Decision = module_for(r).decide(r, facts)
    return decision
