"""The web helper's `--check` modes answer the deploy engine's Check primitive by exit status
(engine/primitives/check.py): 0 in state, WOULD_CHANGE (3) with the problems on stdout when the
fix must run, 1 on error."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import hw_secrets
import pytest
from hw_util import HelperError

from onhost import agent

ONHOST = Path(__file__).resolve().parents[4] / "onhost" / "web"
spec = importlib.util.spec_from_file_location("hw_main", ONHOST / "__main__.py")
assert spec is not None and spec.loader is not None
hw_main = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hw_main)
SECRETS = ["secrets", "--site", "s", "--etc", "/etc/hosting/s", "--database", "s", "--check"]


def test_would_change_is_the_agents() -> None:
    assert hw_main.WOULD_CHANGE == agent.WOULD_CHANGE == 3


def test_main_check_in_state_exits_0_and_prints_nothing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(hw_secrets, "check", lambda *a: [])
    assert hw_main.main(SECRETS) == 0
    assert capsys.readouterr().out == ""


def test_main_check_problems_exit_would_change_and_say_them(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(hw_secrets, "check", lambda *a: ["/etc/hosting/s/db.cnf missing"])
    assert hw_main.main(SECRETS) == 3
    assert capsys.readouterr().out == "/etc/hosting/s/db.cnf missing\n"


def test_main_check_helper_error_exits_1_with_stderr(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*_a: object) -> list[str]:
        raise HelperError("mariadb: cannot connect")
    monkeypatch.setattr(hw_secrets, "check", broken)
    assert hw_main.main(SECRETS) == 1
    assert "cannot connect" in capsys.readouterr().err
