"""Facts: what the host looks like now, as read by the agent, typed.

`FactRequest` says what to read (each primitive in engine/primitives says its part;
`engine.primitives.request_for` unites them), `parse_system` and `parse_facts` turn the agent's
answers into these objects. Tests build them by hand (`HostFacts(...)`) to drive the decisions.
"""
from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


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
    memory_mb: int = 0  # MemTotal of /proc/meminfo; 0 = unknown

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

    @classmethod
    def union(cls, parts: Iterable[FactRequest], secret: Iterable[str] = ()) -> FactRequest:
        """One request for all `parts`, each item once, in first-asked order; no content for
        the `secret` paths. Two different commands under one name are refused."""
        parts = list(parts)
        commands: dict[str, tuple[str, ...]] = {}
        for name, argv in (c for p in parts for c in p.commands):
            if commands.setdefault(name, argv) != argv:
                raise ValueError(f"two commands named {name!r}: {commands[name]} and {argv}")
        hidden = set(secret)
        return cls(_unique(x for p in parts for x in p.paths),
                   _unique(x for p in parts for x in p.packages),
                   _unique(x for p in parts for x in p.units),
                   _unique(x for p in parts for x in p.sysctls),
                   _unique(x for p in parts for x in p.users),
                   tuple(sorted(commands.items())),
                   tuple(x for x in _unique(x for p in parts for x in p.contents)
                         if x not in hidden))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def parse_system(s: Mapping[str, Any]) -> SystemFacts:
    """The agent's answer to a `system` request."""
    return SystemFacts(
        container=s.get("container", ""), os_id=s.get("os_id", ""),
        os_version_id=s.get("os_version_id", ""),
        ssh_algorithms={k: tuple(v) for k, v in s.get("ssh_algorithms", {}).items()},
        memory_mb=int(s.get("mem_total_kb", 0)) // 1024)


def parse_facts(doc: Mapping[str, Any], system: SystemFacts | None = None) -> HostFacts:
    """The agent's answer to a `facts` request; `system`: its answer to the `system` request
    of the same session (or the doc's own "system" part, when it has one)."""
    if system is None:
        system = parse_system(doc.get("system", {}))
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
