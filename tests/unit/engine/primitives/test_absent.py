"""The Absent primitive's decision (engine/primitives/absent.py)."""
from __future__ import annotations

import hashlib

from engine.facts import MISSING, PathFact
from engine.primitives.absent import Absent, decide_absent


def on_host(data: bytes, mode: int = 0o644, owner: str = "root", group: str = "root",
            kind: str = "file") -> PathFact:
    return PathFact(True, kind, mode, owner, group, hashlib.sha256(data).hexdigest(), data)


def test_decide_absent_existing_file_is_removed_and_notifies() -> None:
    [action] = decide_absent(Absent("/etc/ssh/sshd_config.d/00-bootstrap.conf", ("reload",)),
                             on_host(b"PasswordAuthentication no\n"))
    assert action.op == {"kind": "remove", "path": "/etc/ssh/sshd_config.d/00-bootstrap.conf"}
    assert action.notify == ("reload",)
    assert "-PasswordAuthentication no" in action.diff


def test_decide_absent_missing_path_does_nothing() -> None:
    assert decide_absent(Absent("/etc/gone"), MISSING) == []
