"""The runner's and the storage side's textfile metrics (issue 13) after REAL runs (restic
0.18, rclone append-only): a night's run, A down, an unexpected exception, a rotation with
its check, the privileged publish."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from backup_run_helpers import Site

from backup import metrics
from backup.run import EXIT_OFFSITE_FAILED

DAY1 = "2025-01-05T03:15:00+01:00"
DAY2 = "2025-01-06T03:15:00+01:00"


def samples(path: Path) -> dict:
    return {(name, dict(labels).get("tier")): v
            for (name, labels), v in metrics.parse_text(path.read_text()).items()}


def test_main_night_run_writes_every_tier_with_recent_run_time(site: Site,
                                                               textfile_dir: Path) -> None:
    t0 = time.time()
    assert site.run(DAY1).returncode == 0
    s = samples(textfile_dir / "hosting_backup_demo.prom")
    for tier in ("local", "a", "b"):
        assert s[("hosting_backup_last_snapshot_timestamp_seconds", tier)] == 1736043300
        assert s[("hosting_backup_last_run_success", tier)] == 1
        assert t0 - 1 <= s[("hosting_backup_last_run_timestamp_seconds", tier)] <= time.time() + 1
    assert s[("hosting_backup_repository_size_bytes", "local")] > 0


def test_main_backup_a_down_push_0_and_a_keeps_its_newest(site: Site,
                                                          textfile_dir: Path) -> None:
    assert site.run(DAY1).returncode == 0
    site.tier_down("a")
    assert site.run(DAY2).returncode == EXIT_OFFSITE_FAILED
    s = samples(textfile_dir / "hosting_backup_demo.prom")
    assert s[("hosting_backup_last_run_success", "a")] == 0
    assert s[("hosting_backup_last_run_success", "local")] == 1
    assert s[("hosting_backup_last_snapshot_timestamp_seconds", "a")] == 1736043300
    assert s[("hosting_backup_last_snapshot_timestamp_seconds", "local")] == 1736129700


def test_main_unexpected_exception_writes_failed_run_metric(site: Site, textfile_dir: Path,
                                                            monkeypatch) -> None:
    from backup import run

    assert site.run(DAY1).returncode == 0

    def boom(*args, **kwargs):
        raise KeyError("something nobody expected")

    monkeypatch.setattr(run, "run_backup", boom)
    with pytest.raises(KeyError):
        run.main(["--site", "demo", "--config", str(site.config_path), "--time", DAY2])
    s = samples(textfile_dir / "hosting_backup_demo.prom")
    assert s[("hosting_backup_last_run_success", "local")] == 0
    assert s[("hosting_backup_last_run_timestamp_seconds", "local")] >= time.time() - 60
    # the tiers' last known backups stay visible (BackupStale keeps working)
    assert s[("hosting_backup_last_snapshot_timestamp_seconds", "local")] == 1736043300


def test_rotate_with_check_writes_metrics_that_publish_installs(site: Site, textfile_dir: Path,
                                                               tmp_path: Path) -> None:
    assert site.run(DAY1).returncode == 0
    config = site.storage_config("a")
    assert site.rotate("a", "2025-01-05T12:00:00+01:00", "--check").returncode == 0
    state = Path(json.loads(config.read_text())["state_dir"])
    s = samples(state / metrics.METRICS_FILE)
    assert s[("hosting_backup_repository_check_success", "a")] == 1
    assert s[("hosting_backup_rotation_success", "a")] == 1
    assert s[("hosting_backup_repository_size_bytes", "a")] > 0
    assert s[("hosting_backup_last_snapshot_timestamp_seconds", "a")] == 1736043300
    confdir = tmp_path / "storage-conf"
    confdir.mkdir()
    (confdir / "demo.json").write_text(config.read_text())
    assert metrics.main(["publish", "--site", "demo", "--config-dir", str(confdir)]) == 0
    assert samples(textfile_dir / "hosting_backup_demo_a.prom") == s
