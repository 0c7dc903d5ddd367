"""`python3 -m backup.hostsetup secrets --check` answers the deploy engine's Check primitive by
exit status (engine/primitives/check.py): 0 in state, WOULD_CHANGE (3) with what is missing."""
from __future__ import annotations

from pathlib import Path

import pytest

from backup import hostsetup
from onhost import agent


def test_would_change_is_the_agents() -> None:
    assert hostsetup.WOULD_CHANGE == agent.WOULD_CHANGE == 3


def test_main_check_missing_secrets_exit_would_change_and_say_what(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = hostsetup.main(["secrets", "--site", "s", "--dir", str(tmp_path), "--check"])
    assert rc == 3
    out = capsys.readouterr().out
    assert f"{tmp_path}/s.password missing" in out and f"{tmp_path}/s.id_ed25519 missing" in out
    assert list(tmp_path.iterdir()) == []  # a check changes nothing


def test_main_check_in_state_exits_0_and_prints_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(hostsetup, "problems", lambda directory, site: [])
    assert hostsetup.main(["secrets", "--site", "s", "--dir", str(tmp_path), "--check"]) == 0
    assert capsys.readouterr().out == ""
