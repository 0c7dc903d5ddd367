"""Run the agent on a host: one SSH channel per call, as root through `sudo -n`.

The agent's source and the request travel on stdin (never on the command line, so no size
limit and nothing in `ps`), the answer comes back as JSON on stdout.
"""
from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from engine.decide import Plan
from engine.facts import FactRequest, HostFacts, parse_facts

AGENT = Path(__file__).resolve().parents[1] / "onhost" / "agent.py"
# Line 1 of stdin: the agent, compressed; the rest: the JSON request it reads itself.
BOOT = ("import sys,base64,zlib;"
        "exec(compile(zlib.decompress(base64.b64decode(sys.stdin.readline())),'agent','exec'))")
COMMAND = f'sudo -n /usr/bin/python3 -c "{BOOT}"'


class RemoteError(RuntimeError):
    """The agent could not run or did not answer (sudo refused, python3 missing...)."""


class Runner(Protocol):
    """Anything that can run the agent: SSH (AgentChannel) or, in tests, a local process."""

    def __call__(self, stdin: bytes, timeout: float | None) -> tuple[int, bytes, bytes]: ...


@cache
def agent_line() -> bytes:
    return base64.b64encode(zlib.compress(AGENT.read_bytes(), 9)) + b"\n"


class AgentChannel:
    """A Runner over an open Fabric/paramiko connection (already host-certificate verified)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __call__(self, stdin: bytes, timeout: float | None) -> tuple[int, bytes, bytes]:
        self.conn.open()
        transport = self.conn.client.get_transport()
        chan = transport.open_session(timeout=30)
        try:
            chan.settimeout(timeout)
            chan.exec_command(COMMAND)
            chan.sendall(stdin)
            chan.shutdown_write()
            # stderr stays small (the agent captures its children's output), so reading stdout
            # to the end first cannot deadlock on a full stderr window.
            out = chan.makefile("rb").read()
            err = chan.makefile_stderr("rb").read()
            rc = chan.recv_exit_status()
        finally:
            chan.close()
        return rc, out, err


def call(runner: Runner, payload: Mapping[str, Any], timeout: float | None) -> dict[str, Any]:
    stdin = agent_line() + json.dumps(payload).encode()
    rc, out, err = runner(stdin, timeout)
    text = err.decode("utf-8", "replace").strip()
    if rc != 0:
        if "a password is required" in text or "sudo:" in text:
            raise RemoteError(f"sudo refused (the login user needs passwordless sudo): {text}")
        raise RemoteError(f"agent exited {rc}: {text[-2000:] or '(no stderr)'}")
    try:
        return json.loads(out)
    except ValueError as exc:
        raise RemoteError(f"agent answered no JSON ({exc}): {out[:200]!r} {text[-500:]}") from exc


def gather(runner: Runner, request: FactRequest, timeout: float = 120) -> HostFacts:
    return parse_facts(call(runner, {"mode": "facts", "request": request.to_json()}, timeout))


def apply(runner: Runner, plan: Plan, timeout: float | None = 3600) -> dict[str, Any]:
    payload = {"mode": "apply", "actions": [dict(a.op) for a in plan.actions],
               "handlers": [{"name": h.name, "op": dict(h.op), "after": list(h.after)}
                            for h in plan.handlers]}
    return call(runner, payload, timeout)
