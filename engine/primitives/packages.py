"""The `Packages` primitive: Debian packages installed (or purged with present=False).

Facts: each name's installed version (dpkg-query), None when not installed. Decision: install
the missing ones; a host's installs are merged into ONE apt-get run by `merged_install` (called
by engine.decide at the place of the host's first Packages resource). On-host op: `apt`: it
queries dpkg before and after, so it reports `changed` only when a package was really
installed (or purged), and right after a real install it removes the package's `leftovers`:
files the package ships that must never be live (Debian's default nginx site, its www PHP pool)
and that appear during the first deploy's apt run, after the facts were read.
"""
from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.facts import FactRequest, HostFacts
from engine.primitives.common import Action, Decision

OPS = ("apt",)
APT_TIMEOUT = 900  # seconds: a stuck mirror must fail the host, not hang the deploy
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a"}


@dataclass(frozen=True)
class Packages:
    """Every missing package of a host is installed in ONE apt-get run, whatever the number of
    Packages resources. `leftovers`: paths removed right after the apt run that installed these
    packages (only then: a path a later deploy finds is an Absent resource's business)."""

    names: tuple[str, ...]
    present: bool = True
    leftovers: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"packages:{'+' if self.present else '-'}{','.join(self.names)}"


RESOURCE = Packages


def request(r: Packages, check: bool) -> FactRequest:
    return FactRequest(packages=r.names)


def apt_op(names: Sequence[str], install: bool = True,
           leftovers: Sequence[str] = ()) -> dict[str, Any]:
    quoted = " ".join(shlex.quote(n) for n in names)
    if install:
        # --force-confold: a package upgrade never overwrites a config file a role manages.
        script = (f"timeout 300 apt-get update -q && timeout {APT_TIMEOUT} apt-get install -y -q "
                  "--no-install-recommends -o Dpkg::Options::=--force-confdef "
                  f"-o Dpkg::Options::=--force-confold -- {quoted}")
    else:
        script = f"timeout {APT_TIMEOUT} apt-get purge -y -q -- {quoted}"
    return {"kind": "apt", "names": list(names), "install": install, "script": script,
            "timeout": APT_TIMEOUT + 360, "env": dict(APT_ENV), "leftovers": list(leftovers)}


def missing(r: Packages, installed: Mapping[str, str | None]) -> list[str]:
    return [n for n in r.names if not installed.get(n)]


def decide_packages(r: Packages, installed: Mapping[str, str | None]) -> Decision:
    if r.present:
        names = missing(r, installed)
        if not names:
            return []
        return [Action(r.key, f"install {' '.join(names)}", apt_op(names, True, r.leftovers))]
    present = [n for n in r.names if installed.get(n)]
    if not present:
        return []
    return [Action(r.key, f"purge {' '.join(present)}", apt_op(present, install=False))]


def decide(r: Packages, facts: HostFacts) -> Decision:
    return decide_packages(r, facts.packages)


def merged_install(resources: Sequence[Packages],
                   installed: Mapping[str, str | None]) -> Action | None:
    """One apt-get run for every missing package of a host, with the leftovers of the
    resources it installs; None when nothing is missing."""
    names: list[str] = []
    leftovers: list[str] = []
    for r in resources:
        todo = missing(r, installed)
        names += todo
        leftovers += list(r.leftovers) if todo else []
    names = list(dict.fromkeys(names))
    if not names:
        return None
    leftovers = list(dict.fromkeys(leftovers))
    then = f", then remove {' '.join(leftovers)}" if leftovers else ""
    return Action("packages", f"install {' '.join(names)}{then}", apt_op(names, True, leftovers))
