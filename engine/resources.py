"""Desired state: what a role wants a host to look like, as plain immutable data.

A role returns resources (one kind per primitive, each defined with its facts and its decision
in engine/primitives/) and the handlers they may notify; `engine.decide` compares them with the
facts read from the host and returns the actions that make the host match. Nothing here touches
a host. Roles import the resource types from here.

The engine calls a role once per host and run, with the host's real system facts (read first,
on the same agent session as the other facts: engine/converge.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.primitives import Resource
from engine.primitives.absent import Absent
from engine.primitives.check import Check
from engine.primitives.directory import Directory
from engine.primitives.file import File
from engine.primitives.packages import Packages
from engine.primitives.probe import Probe
from engine.primitives.service import Service
from engine.primitives.sysctl import Sysctl
from engine.primitives.user import User

__all__ = ["Absent", "Check", "Directory", "File", "Handler", "Packages", "Probe", "Resource",
           "Service", "Sysctl", "User"]


@dataclass(frozen=True)
class Handler:
    """A command run once at the end, and only if an operation that notifies it succeeded and
    changed something (reload sshd after its config was written, apply nftables after its
    ruleset changed)."""

    name: str
    argv: tuple[str, ...]
    timeout: int = 120
