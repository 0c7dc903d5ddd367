"""Facts: what the host looks like now, as read by the agent in one round trip, typed.

`request_for(resources)` says what to read; `parse_facts(json)` turns the agent's answer into
these objects. Tests build them by hand (`HostFacts(...)`) to drive the decisions.
"""
from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.resources import (
    Absent,
    Directory,
    File,
    Packages,
    Probe,
    Resource,
    Service,
    Sysctl,
    User,
)


@dataclass(frozen=True)
class PathFact:
    exists: bool = False
    kind: str = ""  # file | dir | link | other
    mode: int = 0
    owner: str = ""
    group: str = ""
    sha256: str = ""  # computed on the host: what decisions compare
    data: bytes | None = None  # the content, only when asked for (--check diffs, probe records)
    size: int = 0


MISSING = PathFact()


@dataclass(frozen=True)
class UnitFact:
    load_state: str = "not-found"  # loaded | not-found | masked
    unit_file_state: str = ""  # enabled | disabled | static | masked | ...
    active_state: str = "inactive"  # active | inactive | failed | activating


@dataclass(frozen=True)
class UserFact:
    exists: bool = False
    home: str = ""
    shell: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandFact:
    rc: int
    out: str
    err: str = ""


@dataclass(frozen=True)
class SystemFacts:
    """Facts every role may branch on. `container` is systemd-detect-virt -c's answer ("" on a
    VM or bare metal): the lab's hosts say "systemd-nspawn"."""

    container: str = ""
    os_id: str = "debian"
    os_version_id: str = "13"
    ssh_algorithms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    memory_mb: int = 0  # MemTotal of /proc/meminfo; 0 = unknown (the engine's first build)

    @property
    def in_container(self) -> bool:
        return bool(self.container)


@dataclass(frozen=True)
class HostFacts:
    system: SystemFacts = field(default_factory=SystemFacts)
    paths: Mapping[str, PathFact] = field(default_factory=dict)
    packages: Mapping[str, str | None] = field(default_factory=dict)  # name -> version or None
    units: Mapping[str, UnitFact] = field(default_factory=dict)
    sysctls: Mapping[str, str | None] = field(default_factory=dict)
    users: Mapping[str, UserFact] = field(default_factory=dict)
    commands: Mapping[str, CommandFact] = field(default_factory=dict)

    def path(self, path: str) -> PathFact:
        return self.paths.get(path, MISSING)

    def merged(self, other: HostFacts) -> HostFacts:
        return HostFacts(system=self.system,
                         paths={**self.paths, **other.paths},
                         packages={**self.packages, **other.packages},
                         units={**self.units, **other.units},
                         sysctls={**self.sysctls, **other.sysctls},
                         users={**self.users, **other.users},
                         commands={**self.commands, **other.commands})


@dataclass(frozen=True)
class FactRequest:
    paths: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    sysctls: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    commands: tuple[tuple[str, tuple[str, ...]], ...] = ()
    contents: tuple[str, ...] = ()  # paths (among `paths`) whose content must come back

    def to_json(self) -> dict[str, Any]:
        return {"paths": list(self.paths), "contents": list(self.contents),
                "packages": list(self.packages),
                "units": list(self.units), "sysctls": list(self.sysctls),
                "users": list(self.users),
                "commands": {name: list(argv) for name, argv in self.commands}}

    def is_empty(self) -> bool:
        return not (self.paths or self.packages or self.units or self.sysctls or self.users
                    or self.commands)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def request_for(resources: Iterable[Resource], check: bool = False) -> FactRequest:
    """What to read for `resources`. File content travels back only where it is needed: the
    records probes compare with, and, in check mode, the files a diff shows; never a
    sensitive file's (its diff says only that its sha256 changed)."""
    resources = list(resources)
    paths: list[str] = []
    contents: list[str] = []
    packages: list[str] = []
    units: list[str] = []
    sysctls: list[str] = []
    users: list[str] = []
    commands: dict[str, tuple[str, ...]] = {}
    for r in resources:
        if isinstance(r, File | Absent | Directory):
            paths.append(r.path)
            if check and isinstance(r, File | Absent):
                contents.append(r.path)
        elif isinstance(r, Packages):
            packages.extend(r.names)
        elif isinstance(r, Service):
            units.append(r.unit)
        elif isinstance(r, Sysctl):
            sysctls.append(r.key_name)
        elif isinstance(r, User):
            users.append(r.name)
        elif isinstance(r, Probe):
            commands[r.name] = r.argv
            paths.append(r.expect_from)
            contents.append(r.expect_from)
    secret = {r.path for r in resources if isinstance(r, File) and r.sensitive}
    return FactRequest(_unique(paths), _unique(packages), _unique(units), _unique(sysctls),
                       _unique(users), tuple(sorted(commands.items())),
                       tuple(p for p in _unique(contents) if p not in secret))


def missing_from(request: FactRequest, facts: HostFacts) -> FactRequest:
    """What `request` asks that `facts` does not hold (a second round trip, rarely needed)."""
    cmds = dict(facts.commands)
    return FactRequest(
        tuple(p for p in request.paths if p not in facts.paths),
        tuple(p for p in request.packages if p not in facts.packages),
        tuple(u for u in request.units if u not in facts.units),
        tuple(k for k in request.sysctls if k not in facts.sysctls),
        tuple(u for u in request.users if u not in facts.users),
        tuple((n, a) for n, a in request.commands if n not in cmds),
        tuple(p for p in request.contents if p not in facts.paths),
    )


def parse_facts(doc: Mapping[str, Any]) -> HostFacts:
    s = doc.get("system", {})
    system = SystemFacts(
        container=s.get("container", ""), os_id=s.get("os_id", ""),
        os_version_id=s.get("os_version_id", ""),
        ssh_algorithms={k: tuple(v) for k, v in s.get("ssh_algorithms", {}).items()},
        memory_mb=int(s.get("mem_total_kb", 0)) // 1024)
    paths = {}
    for p, f in doc.get("paths", {}).items():
        if not f.get("exists"):
            paths[p] = MISSING
            continue
        data = base64.b64decode(f["content_b64"]) if "content_b64" in f else None
        paths[p] = PathFact(True, f["kind"], f["mode"], f["owner"], f["group"],
                            f.get("sha256", ""), data, f.get("size", 0))
    units = {u: UnitFact(v.get("LoadState", "") or "not-found", v.get("UnitFileState", ""),
                         v.get("ActiveState", "")) for u, v in doc.get("units", {}).items()}
    users = {n: UserFact(True, u["home"], u["shell"], tuple(u["groups"])) if u.get("exists")
             else UserFact() for n, u in doc.get("users", {}).items()}
    commands = {n: CommandFact(c["rc"], c["out"], c.get("err", ""))
                for n, c in doc.get("commands", {}).items()}
    return HostFacts(system=system, paths=paths, packages=dict(doc.get("packages", {})),
                     units=units, sysctls=dict(doc.get("sysctls", {})), users=users,
                     commands=commands)
