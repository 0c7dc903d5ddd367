"""`fab restore`'s admin side, the pure parts (issue 11): the on-host command line it sends
(the safety snapshot's selector included) and its refusals before anything is touched."""

from __future__ import annotations

import pytest

from tasks.backup_restore import RestoreTaskError, host_argv, maintenance_note


def test_host_argv_passes_the_snapshot_selector_to_the_host() -> None:
    argv = host_argv("villeparisis", "local", "", "0123abcd", False, False, False)
    assert argv[-6:] == ["--site", "villeparisis", "--from", "local", "--snapshot", "0123abcd"]
    assert argv[:2] == ["env", "PYTHONPATH=/usr/local/lib/hosting/backup-runner"]


def test_host_argv_apply_config_wins_over_stage_config() -> None:
    argv = host_argv("s", "a", "2026-03-01", "", True, True, True)
    assert "--apply-config" in argv and "--stage-config" not in argv and "--redump" in argv
    assert argv[argv.index("--at") + 1] == "2026-03-01"


def test_host_argv_at_and_snapshot_together_raise_naming_both() -> None:
    with pytest.raises(RestoreTaskError, match="--at and --snapshot"):
        host_argv("s", "a", "2026-03-01", "0123abcd", False, False, False)


def test_maintenance_note_says_how_to_lift_it() -> None:
    assert maintenance_note("s").endswith("fab proxy.maintenance --site s --off")
