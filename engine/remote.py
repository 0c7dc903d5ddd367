"""Run the agent on a host: ONE SSH channel per host and run, as root through `sudo -n`.

The agent's source travels as the first line on stdin (never on the command line, so no size
limit and nothing in `ps`); then each request is one JSON line and the agent answers each with
one JSON line on stdout, on the same channel, until the admin side closes stdin. A converge is
one session: the system facts, the facts its role's resources need, and (when something
differs) the apply; so the sudo and the python3 start are paid once per host.
"""
from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from engine.decide import OpResult, Plan, op_results
from engine.facts import FactRequest, HostFacts, SystemFacts, parse_facts, parse_system

AGENT = Path(__file__).resolve().parents[1] / "onhost" / "agent.py"
# Line 1 of stdin: the agent, compressed; then the JSON requests it reads itself.
BOOT = ("import sys,base64,zlib;"
        "exec(compile(zlib.decompress(base64.b64decode(sys.stdin.readline())),'agent','exec'))")
COMMAND = f'sudo -n /usr/bin/python3 -c "{BOOT}"'


class RemoteError(RuntimeError):
    """The agent could not run or did not answer (sudo refused, python3 missing...)."""


class Session(Protocol):
    """An agent running on a host: SSH (AgentChannel) or, in tests, a local process or a fake.

    `exchange` sends one request line and returns the answer line (raising RemoteError when the
    agent is gone); `close` ends the session (closes the agent's stdin)."""

    def exchange(self, line: bytes, timeout: float | None) -> bytes: ...

    def close(self) -> None: ...


@cache
def agent_line() -> bytes:
    return base64.b64encode(zlib.compress(AGENT.read_bytes(), 9)) + b"\n"


def agent_gone(rc: int, err: bytes) -> RemoteError:
    """What to say when the agent's process ended without answering."""
    text = err.decode("utf-8", "replace").strip()
    if "a password is required" in text or "sudo:" in text:
        return RemoteError(f"sudo refused (the login user needs passwordless sudo): {text}")
    return RemoteError(f"agent exited {rc}: {text[-2000:] or '(no stderr)'}")


class AgentChannel:
    """A Session over an open Fabric/paramiko connection (already host-certificate verified):
    one channel, opened at the first exchange, closed by `close`."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.chan: Any = None
        self.out: Any = None

    def _start(self) -> None:
        self.conn.open()
        transport = self.conn.client.get_transport()
        self.chan = transport.open_session(timeout=30)
        self.chan.exec_command(COMMAND)
        self.out = self.chan.makefile("rb")
        self.chan.sendall(agent_line())

    def exchange(self, line: bytes, timeout: float | None) -> bytes:
        if self.chan is None:
            self._start()
        self.chan.settimeout(timeout)
        self.chan.sendall(line)
        answer: bytes = self.out.readline()
        if not answer.endswith(b"\n"):
            # stderr stays small (the agent captures its children's output): read it whole.
            err = self.chan.makefile_stderr("rb").read()
            raise agent_gone(self.chan.recv_exit_status(), err)
        return answer

    def close(self) -> None:
        if self.chan is None:
            return
        try:
            self.chan.shutdown_write()
        finally:
            self.chan.close()
            self.chan = None


def call(session: Session, payload: Mapping[str, Any], timeout: float | None) -> dict[str, Any]:
    answer = session.exchange(json.dumps(payload).encode() + b"\n", timeout)
    try:
        reply: dict[str, Any] = json.loads(answer)
    except ValueError as exc:
        raise RemoteError(f"agent answered no JSON ({exc}): {answer[:200]!r}") from exc
    if "agent_error" in reply:
        raise RemoteError(f"agent: {reply['agent_error']}")
    return reply


def system(session: Session, timeout: float = 60) -> SystemFacts:
    return parse_system(call(session, {"mode": "system"}, timeout))


def gather(session: Session, request: FactRequest, system: SystemFacts | None = None,
           timeout: float = 120) -> HostFacts:
    return parse_facts(call(session, {"mode": "facts", "request": request.to_json()}, timeout),
                       system or SystemFacts())


def apply(session: Session, plan: Plan, timeout: float | None = 3600) -> list[OpResult]:
    payload = {"mode": "apply", "actions": [dict(a.op) for a in plan.actions],
               "handlers": [{"name": h.name, "op": dict(h.op), "after": list(h.after)}
                            for h in plan.handlers]}
    return op_results(plan, call(session, payload, timeout))
