"""The on-host agent, run locally on temporary files: facts, atomic validated writes, stop at
the first failure, each op's own `changed`, handlers only after a change; the apt, check and
notify ops; and the session `remote` uses (the agent bootstrapped on stdin, then one JSON
request per line, answered on the same process)."""
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
from engine.decide import decide
from engine.facts import FactRequest
from engine.primitives import request_for
from engine.resources import File, Handler
from engine.role import Desired
from onhost import agent

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def write_op(path: Path, data: bytes, mode: int = 0o640, validate: str | None = None) -> dict:
    return {"kind": "write", "path": str(path), "content_b64": base64.b64encode(data).decode(),
            "mode": mode, "owner": ME, "group": MY_GROUP, "validate": validate}


class LocalSession:
    """What AgentChannel does over SSH, minus SSH and sudo: one agent process, the agent sent
    as the first stdin line, then one request line and one answer line at a time."""

    started = 0

    def __init__(self, argv: tuple[str, ...] = (sys.executable, "-c", remote.BOOT)) -> None:
        self.argv = argv
        self.proc: subprocess.Popen[bytes] | None = None
        self.answers: list[bytes] = []

    def exchange(self, line: bytes, timeout: float | None) -> bytes:
        if self.proc is None:
            LocalSession.started += 1
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert self.proc.stdin is not None
            self.proc.stdin.write(remote.agent_line())
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        answer = self.proc.stdout.readline()
        if not answer.endswith(b"\n"):
            assert self.proc.stderr is not None
            raise remote.agent_gone(self.proc.wait(timeout), self.proc.stderr.read())
        self.answers.append(answer)
        return answer

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            assert self.proc.wait(30) == 0
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()
            self.proc = None


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
    assert "system" not in facts  # its own request, answered first (the role needs it)


def test_answer_system_request_reports_the_system_facts() -> None:
    assert set(agent.answer({"mode": "system"})) >= {"container", "ssh_algorithms", "os_id",
                                                    "mem_total_kb"}


def test_answer_unknown_mode_is_an_agent_error_not_a_crash() -> None:
    assert "unknown mode" in agent.answer({"mode": "dance"})["agent_error"]


def test_apply_write_replaces_the_file_atomically_with_mode_and_no_leftover(
        tmp_path: Path) -> None:
    target = tmp_path / "x.conf"
    target.write_text("old\n")
    reply = agent.apply([write_op(target, b"new\n", 0o600)], [])
    assert reply["results"] == [{"ok": True, "changed": True, "skipped": False, "error": "",
                                 "output": ""}]
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
    assert [r["changed"] for r in reply["results"]] == [True, False, True, True]
    assert not (tmp_path / "gone").exists()
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "chmod").stat().st_mode & 0o777 == 0o600


def test_apply_refuses_to_remove_a_directory(tmp_path: Path) -> None:
    reply = agent.apply([{"kind": "remove", "path": str(tmp_path)}], [])
    assert "directory" in reply["results"][0]["error"] and tmp_path.is_dir()


def test_remote_call_ships_the_agent_on_stdin_and_reads_json(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("content\n")
    f = str(tmp_path / "f")
    session = LocalSession()
    facts = remote.gather(session, FactRequest(paths=(f,), contents=(f,)))
    session.close()
    assert facts.path(f).data == b"content\n"


def test_remote_session_system_facts_and_apply_answered_by_one_agent_process(
        tmp_path: Path) -> None:
    target = tmp_path / "conf"
    marker = tmp_path / "reloaded"
    res = (File(str(target), "x = 1\n", 0o600, owner=ME, group=MY_GROUP, notify=("reload",)),)
    session = LocalSession()
    before = LocalSession.started
    system = remote.system(session)
    plan = decide(res, (Handler("reload", ("touch", str(marker))),),
                  remote.gather(session, FactRequest(paths=(str(target),)), system))
    results = remote.apply(session, plan)
    again = decide(res, (), remote.gather(session, FactRequest(paths=(str(target),))))
    session.close()
    assert LocalSession.started == before + 1 and len(session.answers) == 4
    assert system.os_id != "" or system.os_version_id == ""  # parsed, whatever the machine
    assert [(r.summary, r.ok, r.changed) for r in results] == [
        (f"create {target} (mode 0600)", True, True), ("handler reload", True, True)]
    assert target.read_text() == "x = 1\n" and marker.exists()
    assert again.is_noop


def test_remote_call_agent_crash_is_a_remote_error() -> None:
    crash = (sys.executable, "-c", "import sys; sys.stderr.write('Traceback: boom'); sys.exit(1)")
    with pytest.raises(remote.RemoteError, match="agent exited 1: Traceback: boom"):
        remote.system(LocalSession(crash))


def test_agent_gone_sudo_password_prompt_says_what_is_missing() -> None:
    error = remote.agent_gone(1, b"sudo: a password is required")
    assert "passwordless sudo" in str(error)


# --- what comes back: digests always, content only for check-mode diffs, secrets never -------


def agent_reply(request: FactRequest) -> bytes:
    """The raw bytes the agent writes back for a facts request (what travels over SSH)."""
    session = LocalSession()
    out = session.exchange(json.dumps({"mode": "facts", "request": request.to_json()}).encode()
                           + b"\n", 60)
    session.close()
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
    result = converge("h", LocalSession, lambda _s: Desired((secret, plain)), check=True)
    assert result.ok and result.plan is not None
    diffs = {a.key: a.diff for a in result.plan.actions}
    assert "-port = 80\n+port = 8080\n" in diffs[plain.key]
    assert diffs[secret.key] == (f"--- {secret.path}: (sensitive: content differs, "
                                 "sha256 changed)\n")
    assert (tmp_path / "app.conf").read_bytes() == b"port = 80\n"  # check changed nothing


def test_converge_apply_fetches_no_content_and_writes_what_differs(tmp_path: Path) -> None:
    secret, plain = drifted(tmp_path)
    session = LocalSession()
    result = converge("h", lambda: session, lambda _s: Desired((secret, plain)))
    assert result.ok and result.changed == 2
    facts_reply = session.answers[1]  # after the system facts
    assert b"content_b64" not in facts_reply
    assert (tmp_path / "repo.pass").read_bytes() == b"new-secret-wanted\n"
    again = converge("h", LocalSession, lambda _s: Desired((secret, plain)))
    assert again.plan is not None and again.plan.is_noop and again.round_trips == 2


# --- each op's own `changed`: handlers, apt leftovers, checks -----------------------------------


def test_apply_handler_notified_only_by_an_op_that_changed_nothing_does_not_run(
        tmp_path: Path) -> None:
    marker = tmp_path / "handled"
    handler = {"kind": "command", "argv": ["touch", str(marker)]}
    reply = agent.apply([{"kind": "remove", "path": str(tmp_path / "never-there")}],
                        [{"name": "h", "op": handler, "after": [0]}])
    assert reply["results"][0] == {"ok": True, "changed": False, "skipped": False, "error": "",
                                   "output": ""}
    assert reply["handlers"][0]["ran"] is False and not marker.exists()


def apt_op(tmp_path: Path, leftover: Path) -> dict:
    return {"kind": "apt", "names": ["nginx"], "install": True, "script": "true",
            "timeout": 30, "env": {}, "leftovers": [str(leftover), str(tmp_path / "no-such")]}


def test_op_apt_package_really_installed_removes_the_leftovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leftover = tmp_path / "sites-enabled-default"
    leftover.write_text("server { listen 80 default_server; }\n")
    states = iter([{"nginx": None}, {"nginx": "1.26.3-3"}])
    monkeypatch.setattr(agent, "packages_fact", lambda names: next(states))
    changed, output = agent.op_apt(apt_op(tmp_path, leftover))
    assert changed and not leftover.exists() and output == f"removed {leftover}"


def test_op_apt_nothing_installed_changes_nothing_and_leaves_the_leftovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leftover = tmp_path / "www.conf"
    leftover.write_text("[www]\n")
    monkeypatch.setattr(agent, "packages_fact", lambda names: {"nginx": "1.26.3-3"})
    assert agent.op_apt(apt_op(tmp_path, leftover)) == (False, "")
    assert leftover.exists()


def test_op_apt_failing_script_fails_with_its_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent, "packages_fact", lambda names: {"nginx": None})
    op = {**apt_op(tmp_path, tmp_path / "x"), "script": "echo 'E: Unable to locate' >&2; exit 100"}
    with pytest.raises(agent.OpFailed, match="exited 100: E: Unable to locate"):
        agent.op_apt(op)


def check_op(state: Path, check_extra: str = "") -> dict:
    check = f"{check_extra}test -e {state} || {{ echo {state} missing; exit 3; }}"
    return {"kind": "check", "check": ["sh", "-c", check],
            "apply": ["sh", "-c", f"echo made > {state}"], "timeout": 30}


def test_op_check_in_state_runs_no_apply_and_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("kept\n")
    assert agent.op_check(check_op(state)) == (False, "in state")
    assert state.read_text() == "kept\n"


def test_op_check_would_change_runs_apply_and_reports_changed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    changed, _output = agent.op_check(check_op(state))
    assert changed and state.read_text() == "made\n"


def test_op_check_error_status_fails_with_the_checks_stderr(tmp_path: Path) -> None:
    op = check_op(tmp_path / "state", "echo 'mariadb: cannot connect' >&2; exit 1; ")
    with pytest.raises(agent.OpFailed, match="check before apply failed.*cannot connect"):
        agent.op_check(op)
    assert not (tmp_path / "state").exists()


def test_op_check_apply_that_does_not_converge_fails(tmp_path: Path) -> None:
    op = {**check_op(tmp_path / "state"), "apply": ["true"]}
    with pytest.raises(agent.OpFailed, match="its check still says: .*state missing"):
        agent.op_check(op)


def test_op_notify_reports_a_change_so_its_handlers_run() -> None:
    reply = agent.apply([{"kind": "notify"}], [{"name": "reload", "after": [0],
                                                "op": {"kind": "command", "argv": ["true"]}}])
    assert reply["results"][0]["changed"] and reply["handlers"][0]["ran"]
