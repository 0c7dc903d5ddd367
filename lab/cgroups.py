"""A cgroup of its own for each lab host.

Without systemd on the machine, `systemd-nspawn --keep-unit` builds the container's cgroup tree
(payload/, supervisor/) inside the cgroup it was started from. Started from one shared cgroup,
every container's systemd managed the same tree: units failed at random ("Failed to spawn
executor: No such file or directory" as one container removed a cgroup another was using). So
the supervisor moves itself into hosting-lab/<machine> first, in every hierarchy nspawn reads.
"""
from __future__ import annotations

import os
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
TOP = "hosting-lab"


def roots() -> list[Path]:
    """The cgroup2 hierarchy (pure v2 or the hybrid's unified/) and the hybrid's name=systemd."""
    if (CGROUP_FS / "cgroup.procs").exists():
        return [CGROUP_FS]  # pure cgroup2
    return [p for p in (CGROUP_FS / "unified", CGROUP_FS / "systemd")
            if (p / "cgroup.procs").exists()]


def dirs(machine: str) -> list[Path]:
    return [root / TOP / machine for root in roots()]


def join(machine: str) -> None:
    """Move the calling process into the machine's own cgroups (children inherit them)."""
    for d in dirs(machine):
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.procs").write_text(f"{os.getpid()}\n")


def remove(machine: str) -> list[str]:
    """Remove the machine's cgroups (empty once its processes are gone); return what is left."""
    left = []
    for d in dirs(machine):
        if not d.exists():
            continue
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir(sub)
        _rmdir(d)
        if d.exists():
            left.append(str(d))
        _rmdir(d.parent)  # hosting-lab/ itself, once no lab uses it
    return left


def kill(machine: str) -> None:
    """SIGKILL every process left in the machine's cgroup2 tree (the last resort of `stop`)."""
    for d in dirs(machine):
        if (d / "cgroup.kill").exists():
            (d / "cgroup.kill").write_text("1\n")


def lab_cgroups(prefix: str) -> list[str]:
    found = []
    for root in roots():
        top = root / TOP
        if top.exists():
            found += [str(p) for p in top.iterdir()
                      if p.is_dir() and p.name.startswith(prefix + "-")]
    return sorted(found)


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # not empty (a live process) or already gone
