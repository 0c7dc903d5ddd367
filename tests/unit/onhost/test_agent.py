"""The on-host agent, run locally on temporary files: facts, atomic validated writes, stop at
the first failure, handlers only after a success; and the stdin bootstrap `remote` uses."""
from __future__ import annotations

import base64
import grp
import hashlib
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from engine import remote
from engine.converge import converge
from engine.decide import Plan, decide
from engine.facts import FactRequest, request_for
from engine.resources import File, Handler
from engine.role import Desired
from onhost import agent

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def write_op(path: Path, data: bytes, mode: int = 0o640, validate: str | None = None) -> dict:
    return {"kind": "write", "path": str(path), "content_b64": base64.b64encode(data).decode(),
            "mode": mode, "owner": ME, "group": MY_GROUP, "validate": validate}


def local_runner(stdin: bytes, timeout: float | None) -> tuple[int, bytes, bytes]:
    """What AgentChannel does over SSH, minus SSH and sudo."""
    proc = subprocess.run([sys.executable, "-c", remote.BOOT], input=stdin,
                          capture_output=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def test_gather_reads_files_dirs_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello\n")
    (tmp_path / "f").chmod(0o600)
    facts = agent.gather({"paths": [str(tmp_path / "f"), str(tmp_path), str(tmp_path / "no")],
                          "contents": [str(tmp_path / "f")]})
    f = facts["paths"][str(tmp_path / "f")]
    assert (f["kind"], f["mode"], f["owner"]) == ("file", 0o600, ME)
    assert base64.b64decode(f["content_b64"]) == b"hello\n"
    assert f["sha256"] == hashlib.sha256(b"hello\n").hexdigest()
    assert facts["paths"][str(tmp_path)]["kind"] == "dir"
    assert facts["paths"][str(tmp_path / "no")] == {"exists": False}
    assert set(facts["system"]) >= {"container", "ssh_algorithms", "os_id"}


def test_apply_write_replaces_the_file_atomically_with_mode_and_no_leftover(
        tmp_path: Path) -> None:
    target = tmp_path / "x.conf"
    target.write_text("old\n")
    reply = agent.apply([write_op(target, b"new\n", 0o600)], [])
    assert reply["results"] == [{"ok": True, "skipped": False, "error": "", "output": ""}]
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.conf"]


def test_apply_failed_validation_leaves_the_old_file_and_stops_the_run(tmp_path: Path) -> None:
    target, other = tmp_path / "sshd_config", tmp_path / "other"
    target.write_text("good\n")
    validate = "grep -q '^good' {}"  # accepts only content starting with "good"
    reply = agent.apply([write_op(target, b"bad\n", validate=validate),
                         write_op(other, b"never written\n")], [])
    first, second = reply["results"]
    assert not first["ok"] and "validation failed" in first["error"]
    assert f"{target} left unchanged" in first["error"]
    assert second["skipped"] and not other.exists()
    assert target.read_text() == "good\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sshd_config"]  # temp file removed


def test_apply_validation_sees_the_new_content_in_a_temp_file_beside_the_target(
        tmp_path: Path) -> None:
    target = tmp_path / "x.conf"
    seen = tmp_path.parent / f"{tmp_path.name}-seen"
    reply = agent.apply([write_op(target, b"v2\n", validate=f"cp {{}} {seen}; echo {{}} >> "
                                                            f"{seen}")], [])
    assert reply["results"][0]["ok"]
    content, name = seen.read_text().splitlines()
    assert content == "v2" and Path(name).parent == tmp_path and name.endswith("~")
    seen.unlink()


def test_apply_handlers_run_only_after_a_successful_notifying_action(tmp_path: Path) -> None:
    marker = tmp_path / "handled"
    ok_op = write_op(tmp_path / "a", b"a")
    bad_op = {"kind": "command", "argv": ["false"]}
    handler = {"kind": "command", "argv": ["sh", "-c", f"echo ran >> {marker}"]}
    reply = agent.apply([ok_op, bad_op], [{"name": "h-ok", "op": handler, "after": [0]},
                                          {"name": "h-bad", "op": handler, "after": [1]}])
    assert [h["ran"] for h in reply["handlers"]] == [True, False]
    assert marker.read_text() == "ran\n"
    assert "false exited 1" in reply["results"][1]["error"]


def test_apply_remove_mkdir_and_attrs(tmp_path: Path) -> None:
    (tmp_path / "gone").write_text("x")
    (tmp_path / "chmod").write_text("x")
    ops = [{"kind": "remove", "path": str(tmp_path / "gone")},
           {"kind": "remove", "path": str(tmp_path / "never-there")},
           {"kind": "mkdir", "path": str(tmp_path / "d"), "mode": 0o750, "owner": ME,
            "group": MY_GROUP},
           {"kind": "attrs", "path": str(tmp_path / "chmod"), "mode": 0o600, "owner": ME,
            "group": MY_GROUP}]
    reply = agent.apply(ops, [])
    assert all(r["ok"] for r in reply["results"])
    assert not (tmp_path / "gone").exists()
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "chmod").stat().st_mode & 0o777 == 0o600


def test_apply_refuses_to_remove_a_directory(tmp_path: Path) -> None:
    reply = agent.apply([{"kind": "remove", "path": str(tmp_path)}], [])
    assert "directory" in reply["results"][0]["error"] and tmp_path.is_dir()


def test_remote_call_ships_the_agent_on_stdin_and_reads_json(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("content\n")
    f = str(tmp_path / "f")
    facts = remote.gather(local_runner, FactRequest(paths=(f,), contents=(f,)))
    assert facts.path(f).data == b"content\n"


def test_remote_apply_executes_a_plan_made_by_decide(tmp_path: Path) -> None:
    target = tmp_path / "conf"
    marker = tmp_path / "reloaded"
    res = (File(str(target), "x = 1\n", 0o600, owner=ME, group=MY_GROUP, notify=("reload",)),)
    plan = decide(res, (Handler("reload", ("touch", str(marker))),),
                  remote.gather(local_runner, FactRequest(paths=(str(target),))))
    reply = remote.apply(local_runner, plan)
    assert [r["ok"] for r in reply["results"]] == [True]
    assert target.read_text() == "x = 1\n" and marker.exists()
    again = decide(res, (), remote.gather(local_runner, FactRequest(paths=(str(target),))))
    assert again.is_noop


def test_remote_call_agent_crash_is_a_remote_error() -> None:
    def broken(stdin: bytes, timeout: float | None) -> tuple[int, bytes, bytes]:
        return 1, b"", b"Traceback: boom"
    with pytest.raises(remote.RemoteError, match="boom"):
        remote.apply(broken, Plan())


def test_remote_call_sudo_password_prompt_says_what_is_missing() -> None:
    def sudo(stdin: bytes, timeout: float | None) -> tuple[int, bytes, bytes]:
        return 1, b"", b"sudo: a password is required"
    with pytest.raises(remote.RemoteError, match="passwordless sudo"):
        remote.gather(sudo, FactRequest())


# --- what comes back: digests always, content only for check-mode diffs, secrets never -------


def agent_reply(request: FactRequest) -> bytes:
    """The raw bytes the agent writes back for a facts request (what travels over SSH)."""
    stdin = remote.agent_line() + json.dumps({"mode": "facts",
                                              "request": request.to_json()}).encode()
    rc, out, err = local_runner(stdin, 60)
    assert rc == 0, err
    return out


def drifted(tmp_path: Path) -> tuple[File, File]:
    """A secret and a plain file, both on the host with other content than wanted."""
    (tmp_path / "repo.pass").write_bytes(b"old-secret-on-host\n")
    (tmp_path / "app.conf").write_bytes(b"port = 80\n")
    for p in tmp_path.iterdir():
        p.chmod(0o600)
    return (File(str(tmp_path / "repo.pass"), "new-secret-wanted\n", 0o600, ME, MY_GROUP,
                 sensitive=True),
            File(str(tmp_path / "app.conf"), "port = 8080\n", 0o600, ME, MY_GROUP))


def test_agent_facts_sensitive_file_content_never_in_the_payload_even_in_check(
        tmp_path: Path) -> None:
    secret, plain = drifted(tmp_path)
    out = agent_reply(request_for((secret, plain), check=True))
    on_host = b"old-secret-on-host\n"
    assert on_host not in out and base64.b64encode(on_host) not in out
    assert base64.b64encode(b"port = 80\n") in out  # the plain file's, for its diff
    paths = json.loads(out)["paths"]
    assert "content_b64" not in paths[secret.path]
    assert paths[secret.path]["sha256"] == hashlib.sha256(on_host).hexdigest()


def test_agent_facts_apply_mode_no_content_comes_back(tmp_path: Path) -> None:
    secret, plain = drifted(tmp_path)
    request = request_for((secret, plain))
    assert request.contents == ()
    paths = json.loads(agent_reply(request))["paths"]
    assert all("content_b64" not in f for f in paths.values())
    assert {f["sha256"] for f in paths.values()} == {
        hashlib.sha256(b"old-secret-on-host\n").hexdigest(),
        hashlib.sha256(b"port = 80\n").hexdigest()}


def test_converge_check_plain_file_diff_and_sensitive_file_only_said_changed(
        tmp_path: Path) -> None:
    secret, plain = drifted(tmp_path)
    result = converge("h", lambda: local_runner, lambda _s: Desired((secret, plain)), check=True)
    assert result.ok and result.plan is not None
    diffs = {a.key: a.diff for a in result.plan.actions}
    assert "-port = 80\n+port = 8080\n" in diffs[plain.key]
    assert diffs[secret.key] == (f"--- {secret.path}: (sensitive: content differs, "
                                 "sha256 changed)\n")
    assert (tmp_path / "app.conf").read_bytes() == b"port = 80\n"  # check changed nothing


def test_converge_apply_fetches_no_content_and_writes_what_differs(tmp_path: Path) -> None:
    secret, plain = drifted(tmp_path)
    replies: list[bytes] = []

    def recording(stdin: bytes, timeout: float | None) -> tuple[int, bytes, bytes]:
        rc, out, err = local_runner(stdin, timeout)
        replies.append(out)
        return rc, out, err

    result = converge("h", lambda: recording, lambda _s: Desired((secret, plain)))
    assert result.ok and result.changed == 2
    facts_reply = replies[0]
    assert b"content_b64" not in facts_reply
    assert (tmp_path / "repo.pass").read_bytes() == b"new-secret-wanted\n"
    again = converge("h", lambda: local_runner, lambda _s: Desired((secret, plain)))
    assert again.plan is not None and again.plan.is_noop and again.round_trips == 1
