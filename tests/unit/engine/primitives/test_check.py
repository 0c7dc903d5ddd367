"""The Check primitive's decision (engine/primitives/check.py): the check's exit status says
in state (0), would change (3) or error (anything else)."""
from __future__ import annotations

from engine.facts import CommandFact
from engine.primitives.check import Check, decide_check, request
from onhost.agent import WOULD_CHANGE

CHECK = Check("web-secrets-site", ("helper", "secrets", "--check"), ("helper", "secrets"),
              "site: generate missing secrets")


def test_request_check_runs_the_check_command_under_its_name() -> None:
    assert request(CHECK, check=False).commands == (("web-secrets-site",
                                                     ("helper", "secrets", "--check")),)


def test_decide_check_in_state_does_nothing() -> None:
    assert decide_check(CHECK, CommandFact(0, "")) == []


def test_decide_check_would_change_applies_and_shows_what_the_check_said() -> None:
    [action] = decide_check(CHECK, CommandFact(WOULD_CHANGE, "db.cnf missing\nsalt missing\n"))
    assert action.key == "check:web-secrets-site"
    assert action.summary == "site: generate missing secrets"
    assert action.op == {"kind": "check", "check": ["helper", "secrets", "--check"],
                         "apply": ["helper", "secrets"], "timeout": 300}
    assert action.diff == "--- web-secrets-site: not in state\n  db.cnf missing\n  salt missing\n"


def test_decide_check_error_checks_again_when_applied_and_says_the_stderr() -> None:
    [action] = decide_check(CHECK, CommandFact(2, "", "python3: can't open file 'helper'"))
    assert action.op["kind"] == "check"  # the op checks again: earlier actions may install it
    assert "exited 2" in action.summary and "can't open file" in action.summary


def test_decide_check_never_run_is_an_action_not_a_silent_pass() -> None:
    [action] = decide_check(CHECK, None)
    assert "not run" in action.summary
