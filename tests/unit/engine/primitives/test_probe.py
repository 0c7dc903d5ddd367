"""The Probe primitive's decision (engine/primitives/probe.py)."""
from __future__ import annotations

from engine.facts import MISSING, CommandFact, PathFact
from engine.primitives.probe import Probe, decide_probe

PROBE = Probe("nftables-live", ("sh", "-c", "nft -s list ruleset"),
              "/var/lib/hosting/nftables.applied", notify=("reload-nftables",))


def recorded(text: str) -> PathFact:
    return PathFact(True, "file", 0o644, "root", "root", "", text.encode())


def test_decide_probe_live_state_as_recorded_does_nothing() -> None:
    assert decide_probe(PROBE, CommandFact(0, "abc  -\n"), recorded("abc  -\n")) == []


def test_decide_probe_drift_notifies_the_handler_and_shows_the_drift_as_a_diff() -> None:
    live = "chain input {\n  tcp dport 22 accept\n  tcp dport 8080 accept\n}\n"
    [action] = decide_probe(PROBE, CommandFact(0, live), recorded(live.replace(
        "  tcp dport 8080 accept\n", "")))
    assert action.op == {"kind": "notify"}
    assert action.notify == ("reload-nftables",)
    assert "-  tcp dport 8080 accept\n" in action.diff
    assert action.diff.startswith("--- nftables-live (live)\n")


def test_decide_probe_never_recorded_notifies() -> None:
    [action] = decide_probe(PROBE, CommandFact(0, "abc  -\n"), MISSING)
    assert "no record" in action.summary


def test_decide_probe_failing_command_notifies() -> None:
    assert decide_probe(PROBE, CommandFact(1, ""), recorded(""))
