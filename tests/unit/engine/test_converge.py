"""One host's converge with a fake agent session: the role is called once with the host's
system facts, everything happens on ONE session (system facts, facts, apply), check mode
executes nothing, a no-op costs two round trips, and the host's changes are counted from the
agent's own op results."""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from engine.converge import converge
from engine.facts import SystemFacts
from engine.resources import File, Handler
from engine.role import Desired

WANTED = Desired((File("/etc/a.conf", "new\n", notify=("reload",)),),
                 (Handler("reload", ("systemctl", "reload", "a.service")),))
CONVERGED = {"/etc/a.conf": {"exists": True, "kind": "file", "mode": 0o644, "owner": "root",
                             "group": "root", "sha256": hashlib.sha256(b"new\n").hexdigest(),
                             "content_b64": base64.b64encode(b"new\n").decode()}}


class FakeAgent:
    """A Session answering `system` and `facts` from data and recording every request."""

    opened = 0

    def __init__(self, paths: dict[str, Any], apply_reply: dict[str, Any] | None = None,
                 container: str = "") -> None:
        self.paths = paths
        self.container = container
        self.apply_reply = apply_reply
        self.modes: list[str] = []
        self.applied: list[dict[str, Any]] = []
        self.closed = False

    def open(self) -> FakeAgent:
        FakeAgent.opened += 1
        return self

    def exchange(self, line: bytes, timeout: float | None) -> bytes:
        assert line.endswith(b"\n") and not self.closed
        request = json.loads(line)
        self.modes.append(request["mode"])
        if request["mode"] == "system":
            reply: dict[str, Any] = {"container": self.container}
        elif request["mode"] == "facts":
            reply = {"paths": {p: self.paths.get(p, {"exists": False})
                               for p in request["request"]["paths"]}}
        else:
            self.applied.append(request)
            reply = self.apply_reply or {
                "results": [{"ok": True, "changed": True, "skipped": False, "error": ""}
                            for _ in request["actions"]],
                "handlers": [{"name": h["name"], "ran": True, "ok": True, "changed": True}
                             for h in request["handlers"]]}
        return json.dumps(reply).encode() + b"\n"

    def close(self) -> None:
        self.closed = True


def build(_system: SystemFacts) -> Desired:
    return WANTED


def test_converge_check_mode_reports_diff_and_executes_nothing() -> None:
    agent = FakeAgent({})
    result = converge("h", agent.open, build, check=True)
    assert agent.applied == [] and agent.modes == ["system", "facts"]
    assert result.ok and result.changed == 1 and result.round_trips == 2
    assert result.plan is not None and "+new" in result.plan.actions[0].diff


def test_converge_apply_runs_the_plan_and_the_handler_once_on_the_same_session() -> None:
    agent = FakeAgent({})
    before = FakeAgent.opened
    result = converge("h", agent.open, build)
    [request] = agent.applied
    assert [a["kind"] for a in request["actions"]] == ["write"]
    assert [h["name"] for h in request["handlers"]] == ["reload"]
    assert agent.modes == ["system", "facts", "apply"] and FakeAgent.opened == before + 1
    assert result.ok and result.changed == 1 and result.round_trips == 3 and agent.closed
    assert [(o.summary, o.changed) for o in result.outcomes] == [
        ("create /etc/a.conf (mode 0644)", True), ("handler reload", True)]


def test_converge_nothing_to_do_costs_two_round_trips_and_applies_nothing() -> None:
    agent = FakeAgent(CONVERGED)
    result = converge("h", agent.open, build)
    assert agent.applied == [] and result.round_trips == 2 and agent.closed
    assert (result.changed, result.unchanged, result.failed) == (0, 1, 0)


def test_converge_op_reporting_no_change_is_not_counted_as_changed() -> None:
    reply = {"results": [{"ok": True, "changed": False, "skipped": False, "error": ""}],
             "handlers": [{"name": "reload", "ran": False, "ok": True}]}
    result = converge("h", FakeAgent({}, reply).open, build)
    assert (result.changed, result.failed, result.ok) == (0, 0, True)
    assert [o.summary for o in result.outcomes] == ["create /etc/a.conf (mode 0644)"]


def test_converge_failed_action_counts_as_failed_not_changed() -> None:
    reply = {"results": [{"ok": False, "skipped": False, "error": "validation failed"}],
             "handlers": [{"name": "reload", "ran": False, "ok": True}]}
    result = converge("h", FakeAgent({}, reply).open, build)
    assert (result.changed, result.failed, result.ok) == (0, 1, False)
    assert result.outcomes[0].error == "validation failed"


def test_converge_unreachable_host_is_a_result_not_an_exception() -> None:
    def refuse() -> Any:
        raise OSError("connection refused")
    result = converge("h", refuse, build)
    assert not result.ok and "connection refused" in result.error and result.plan is None


def test_converge_agent_error_fails_the_host_and_closes_the_session() -> None:
    class Broken(FakeAgent):
        def exchange(self, line: bytes, timeout: float | None) -> bytes:
            return b'{"agent_error": "KeyError: mode"}\n'
    agent = Broken({})
    result = converge("h", agent.open, build)
    assert "KeyError: mode" in result.error and agent.closed


def test_converge_role_called_once_with_the_hosts_system_facts() -> None:
    seen: list[SystemFacts] = []

    def spy(system: SystemFacts) -> Desired:
        seen.append(system)
        return WANTED
    converge("h", FakeAgent({}, container="systemd-nspawn").open, spy)
    assert [s.container for s in seen] == ["systemd-nspawn"]
