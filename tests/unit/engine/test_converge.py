"""One host's converge with a fake agent: check mode executes nothing, apply executes the
plan once, a failure is reported (never raised), and a no-op costs one round trip."""
from __future__ import annotations

import json
from typing import Any

from engine.converge import converge
from engine.facts import SystemFacts
from engine.resources import File, Handler
from engine.role import Desired

WANTED = Desired((File("/etc/a.conf", "new\n", notify=("reload",)),),
                 (Handler("reload", ("systemctl", "reload", "a.service")),))


class FakeAgent:
    """Answers `facts` from a dict and records every `apply` it is asked to run."""

    def __init__(self, paths: dict[str, Any], apply_reply: dict[str, Any] | None = None,
                 container: str = "") -> None:
        self.paths = paths
        self.container = container
        self.applied: list[dict[str, Any]] = []
        self.apply_reply = apply_reply

    def __call__(self, stdin: bytes, timeout: float | None) -> tuple[int, bytes, bytes]:
        request = json.loads(stdin.split(b"\n", 1)[1])
        if request["mode"] == "facts":
            reply = {"system": {"container": self.container},
                     "paths": {p: self.paths.get(p, {"exists": False})
                               for p in request["request"]["paths"]}}
        else:
            self.applied.append(request)
            reply = self.apply_reply or {
                "results": [{"ok": True, "skipped": False, "error": ""}
                            for _ in request["actions"]],
                "handlers": [{"name": h["name"], "ran": True, "ok": True}
                             for h in request["handlers"]]}
        return 0, json.dumps(reply).encode(), b""


def build(_system: SystemFacts) -> Desired:
    return WANTED


def test_converge_check_mode_reports_diff_and_executes_nothing() -> None:
    agent = FakeAgent({})
    result = converge("h", lambda: agent, build, check=True)
    assert agent.applied == []
    assert result.ok and result.changed == 1 and result.round_trips == 1
    assert result.plan is not None and "+new" in result.plan.actions[0].diff


def test_converge_apply_runs_the_plan_and_the_handler_once() -> None:
    agent = FakeAgent({})
    result = converge("h", lambda: agent, build)
    [request] = agent.applied
    assert [a["kind"] for a in request["actions"]] == ["write"]
    assert [h["name"] for h in request["handlers"]] == ["reload"]
    assert result.ok and result.changed == 1 and result.round_trips == 2
    assert [o.summary for o in result.outcomes] == ["create /etc/a.conf (mode 0644)",
                                                    "handler reload"]


def test_converge_nothing_to_do_costs_one_round_trip_and_applies_nothing() -> None:
    import base64
    import hashlib
    agent = FakeAgent({"/etc/a.conf": {"exists": True, "kind": "file", "mode": 0o644,
                                       "owner": "root", "group": "root",
                                       "sha256": hashlib.sha256(b"new\n").hexdigest(),
                                       "content_b64": base64.b64encode(b"new\n").decode()}})
    result = converge("h", lambda: agent, build)
    assert agent.applied == [] and result.round_trips == 1
    assert (result.changed, result.unchanged, result.failed) == (0, 1, 0)


def test_converge_failed_action_counts_as_failed_not_changed() -> None:
    reply = {"results": [{"ok": False, "skipped": False, "error": "validation failed"}],
             "handlers": [{"name": "reload", "ran": False, "ok": True}]}
    result = converge("h", lambda: FakeAgent({}, reply), build)
    assert (result.changed, result.failed, result.ok) == (0, 1, False)
    assert result.outcomes[0].error == "validation failed"


def test_converge_unreachable_host_is_a_result_not_an_exception() -> None:
    def refuse() -> Any:
        raise OSError("connection refused")
    result = converge("h", refuse, build)
    assert not result.ok and "connection refused" in result.error and result.plan is None


def test_converge_roles_see_the_hosts_system_facts() -> None:
    seen: list[SystemFacts] = []

    def spy(system: SystemFacts) -> Desired:
        seen.append(system)
        return WANTED
    converge("h", lambda: FakeAgent({}, container="systemd-nspawn"), spy, check=True)
    assert [s.container for s in seen] == ["", "systemd-nspawn"]  # probe, then real facts
