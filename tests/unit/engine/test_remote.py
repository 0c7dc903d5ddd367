"""AgentChannel, the SSH side of an agent session (engine/remote.py), over a fake paramiko
channel: one channel for every request of a converge, the agent sent once, one answer line per
request, a vanished agent reported with its stderr, and stdin closed at the end."""
from __future__ import annotations

import io
import json
from typing import Any

import pytest

from engine import remote
from engine.facts import FactRequest


class FakeChannel:
    def __init__(self, answers: list[bytes], rc: int = 0, err: bytes = b"") -> None:
        self.stdout = io.BytesIO(b"".join(answers))
        self.stderr = io.BytesIO(err)
        self.rc = rc
        self.sent: list[bytes] = []
        self.command = ""
        self.write_shut = self.closed = False

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    def exec_command(self, command: str) -> None:
        self.command = command

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)

    def makefile(self, mode: str) -> io.BytesIO:
        return self.stdout

    def makefile_stderr(self, mode: str) -> io.BytesIO:
        return self.stderr

    def recv_exit_status(self) -> int:
        return self.rc

    def shutdown_write(self) -> None:
        self.write_shut = True

    def close(self) -> None:
        self.closed = True


class FakeConn:
    def __init__(self, chan: FakeChannel) -> None:
        self.chan = chan
        self.sessions = 0
        self.client = self

    def open(self) -> None:
        pass

    def get_transport(self) -> FakeConn:
        return self

    def open_session(self, timeout: float) -> FakeChannel:
        self.sessions += 1
        return self.chan


def test_agent_channel_every_request_on_one_channel_agent_sent_once() -> None:
    chan = FakeChannel([b'{"container": "systemd-nspawn"}\n', b'{"paths": {}}\n'])
    conn = FakeConn(chan)
    session = remote.AgentChannel(conn)
    system = remote.system(session)
    remote.gather(session, FactRequest(), system)
    session.close()
    assert conn.sessions == 1 and chan.command == remote.COMMAND
    assert chan.sent[0] == remote.agent_line()
    assert [json.loads(line)["mode"] for line in chan.sent[1:]] == ["system", "facts"]
    assert system.container == "systemd-nspawn"
    assert chan.write_shut and chan.closed


def test_agent_channel_agent_gone_reports_its_stderr_and_exit_status() -> None:
    chan = FakeChannel([], rc=1, err=b"sudo: a password is required\n")
    with pytest.raises(remote.RemoteError, match="passwordless sudo"):
        remote.system(remote.AgentChannel(FakeConn(chan)))


def test_call_agent_error_answer_is_a_remote_error() -> None:
    class Answers:
        def exchange(self, line: bytes, timeout: float | None) -> bytes:
            return b'{"agent_error": "KeyError: \'request\'"}\n'

        def close(self) -> None:
            pass
    with pytest.raises(remote.RemoteError, match="agent: KeyError"):
        remote.call(Answers(), {"mode": "facts"}, 10)


def test_call_answer_not_json_is_a_remote_error() -> None:
    class Garbage:
        def exchange(self, line: bytes, timeout: float | None) -> Any:
            return b"Traceback (most recent call last)\n"

        def close(self) -> None:
            pass
    with pytest.raises(remote.RemoteError, match="no JSON"):
        remote.call(Garbage(), {"mode": "system"}, 10)
