"""The Directory primitive's decision (engine/primitives/directory.py)."""
from __future__ import annotations

import hashlib

from engine.facts import MISSING, PathFact
from engine.primitives.directory import Directory, decide_directory


def on_host(data: bytes, mode: int = 0o644, owner: str = "root", group: str = "root",
            kind: str = "file") -> PathFact:
    return PathFact(True, kind, mode, owner, group, hashlib.sha256(data).hexdigest(), data)


def test_decide_directory_missing_creates_it() -> None:
    [action] = decide_directory(Directory("/etc/ssh/auth_principals", 0o755), MISSING)
    assert action.op == {"kind": "mkdir", "path": "/etc/ssh/auth_principals", "mode": 0o755,
                         "owner": "root", "group": "root"}


def test_decide_directory_group_writable_is_fixed_in_place() -> None:
    [action] = decide_directory(Directory("/etc/ssh"), on_host(b"", 0o775, kind="dir"))
    assert action.op["kind"] == "attrs"
    assert "mode 0775->0755" in action.summary


def test_decide_directory_as_wanted_does_nothing() -> None:
    assert decide_directory(Directory("/etc/ssh"), on_host(b"", 0o755, kind="dir")) == []
