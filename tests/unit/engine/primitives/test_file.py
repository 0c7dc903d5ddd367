"""The File primitive's decision: plain facts in, actions out (engine/primitives/file.py)."""
from __future__ import annotations

import base64
import hashlib

from engine.facts import MISSING, PathFact
from engine.primitives.file import File, decide_file, file_diff
from onhost.agent import MAX_CONTENT


def on_host(data: bytes, mode: int = 0o644, owner: str = "root", group: str = "root",
            kind: str = "file") -> PathFact:
    return PathFact(True, kind, mode, owner, group, hashlib.sha256(data).hexdigest(), data)


def test_decide_file_missing_creates_it_with_a_diff_from_nothing() -> None:
    r = File("/etc/x.conf", "a = 1\n", 0o600, validate="check {}", notify=("reload-x",))
    [action] = decide_file(r, MISSING)
    assert action.summary == "create /etc/x.conf (mode 0600, validated by `check {}`)"
    assert action.op == {"kind": "write", "path": "/etc/x.conf",
                         "content_b64": base64.b64encode(b"a = 1\n").decode(), "mode": 0o600,
                         "owner": "root", "group": "root", "validate": "check {}"}
    assert action.notify == ("reload-x",)
    assert "--- /dev/null" in action.diff and "+a = 1" in action.diff


def test_decide_file_same_content_mode_and_owner_does_nothing() -> None:
    assert decide_file(File("/etc/x.conf", "a = 1\n"), on_host(b"a = 1\n")) == []


def test_decide_file_other_content_rewrites_it_with_a_unified_diff() -> None:
    [action] = decide_file(File("/etc/x.conf", "a = 2\n", notify=("h",)), on_host(b"a = 1\n"))
    assert action.op["kind"] == "write"
    assert action.summary == "write /etc/x.conf (content)"
    assert "-a = 1\n+a = 2\n" in action.diff
    assert action.diff.startswith("--- /etc/x.conf (on host)\n+++ /etc/x.conf (wanted)\n")


def test_decide_file_only_mode_differs_chmods_without_rewriting() -> None:
    [action] = decide_file(File("/etc/x.conf", "a\n", 0o600, notify=("h",)),
                           on_host(b"a\n", 0o644))
    assert action.op == {"kind": "attrs", "path": "/etc/x.conf", "mode": 0o600,
                         "owner": "root", "group": "root"}
    assert "mode 0644->0600" in action.summary
    assert action.notify == ("h",)


def test_decide_file_content_and_owner_differ_one_write_says_both() -> None:
    [action] = decide_file(File("/etc/x", "b\n"), on_host(b"a\n", owner="admin"))
    assert action.op["kind"] == "write"
    assert action.summary == "write /etc/x (content, owner admin:root->root:root)"


def test_decide_file_create_only_existing_file_is_never_rewritten() -> None:
    r = File("/etc/ssh/revoked_keys.krl", b"", create_only=True)
    assert decide_file(r, on_host(b"KRL with revocations")) == []
    [action] = decide_file(r, MISSING)
    assert action.op["kind"] == "write"


def test_decide_file_too_large_to_read_is_compared_by_digest() -> None:
    data = b"x" * 10
    big = PathFact(True, "file", 0o644, "root", "root", hashlib.sha256(data).hexdigest(), None,
                   MAX_CONTENT + 1)
    assert decide_file(File("/f", data), big) == []
    [action] = decide_file(File("/f", b"other"), big)
    assert "larger than the agent sends back" in action.diff and "sha256" in action.diff


def test_decide_file_content_not_fetched_compared_by_digest_only() -> None:
    """Apply mode: the agent sends digests, not content; equal digests mean nothing to do."""
    data = b"a = 1\n"
    fetched_not = PathFact(True, "file", 0o644, "root", "root", hashlib.sha256(data).hexdigest(),
                           None, len(data))
    assert decide_file(File("/etc/x.conf", data), fetched_not) == []
    [action] = decide_file(File("/etc/x.conf", "a = 2\n"), fetched_not)
    assert action.op["kind"] == "write" and "content not fetched" in action.diff


def test_decide_file_sensitive_content_never_appears_in_the_diff() -> None:
    [action] = decide_file(File("/etc/secret", "password=hunter2\n", sensitive=True),
                           on_host(b"password=old\n"))
    assert action.diff == "--- /etc/secret: (sensitive: content differs, sha256 changed)\n"
    [created] = decide_file(File("/etc/secret", "password=hunter2\n", sensitive=True), MISSING)
    assert "hunter2" not in created.diff and "sensitive: new file" in created.diff


def test_file_diff_binary_content_names_both_digests() -> None:
    text = file_diff("/k.krl", on_host(b"\xff\x00"), b"\xfe\x01")
    assert "binary content differs" in text


def test_decide_file_symlink_in_place_is_replaced_by_the_file() -> None:
    [action] = decide_file(File("/etc/x", "a\n"), PathFact(True, "link", 0o777, "root", "root"))
    assert action.op["kind"] == "write"
