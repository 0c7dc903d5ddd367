"""Helpers for the role tests that go through the deploy engine's own decisions
(engine.decide): a host context for a host of the typed inventory, and the facts of a host on
which a role's desired state already holds."""
from __future__ import annotations

import hashlib

from engine.facts import CommandFact, HostFacts, PathFact, SystemFacts, UnitFact, UserFact
from engine.inventory import Inventory
from engine.resources import (
    Absent,
    Check,
    Directory,
    File,
    Packages,
    Probe,
    Service,
    Sysctl,
    User,
)
from engine.role import HostContext


def role_ctx(inv: Inventory, host: str) -> HostContext:
    return HostContext(inv, inv.host(host), SystemFacts(container="systemd-nspawn"))


def converged(desired) -> HostFacts:
    """Facts of a host on which every resource already holds."""
    paths, packages, units, users, commands = {}, {}, {}, {}, {}
    for r in desired.resources:
        if isinstance(r, File):
            paths[r.path] = PathFact(True, "file", r.mode, r.owner, r.group,
                                     hashlib.sha256(r.data).hexdigest(), r.data)
        elif isinstance(r, Directory):
            paths[r.path] = PathFact(True, "dir", r.mode, r.owner, r.group)
        elif isinstance(r, Absent):
            paths[r.path] = PathFact()
        elif isinstance(r, Packages):
            packages.update({n: "1" for n in r.names})
        elif isinstance(r, Service):
            units[r.unit] = UnitFact("loaded", "enabled", "active")
        elif isinstance(r, User):
            old = users.get(r.name)
            groups = tuple(sorted(set(r.groups) | set(old.groups if old else ())))
            users[r.name] = UserFact(True, r.home, r.shell, groups)
        elif isinstance(r, Probe):
            expected = next(f for f in desired.resources
                            if isinstance(f, File) and f.path == r.expect_from)
            commands[r.name] = CommandFact(0, expected.data.decode())
        elif isinstance(r, Check):
            commands[r.name] = CommandFact(0, "")  # exit 0: in state
        elif isinstance(r, Sysctl):
            pass
    return HostFacts(SystemFacts(container="systemd-nspawn"), paths, packages, units, {}, users,
                     commands)
