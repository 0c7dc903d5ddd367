"""backup.metrics (issue 13): the textfile format node exporter reads (parsed back, and
`promtool check metrics` when promtool is installed), the atomic write, the runner's and the
storage side's metrics from their status pictures, the failed-run metric, the checked publish."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from backup import metrics
from backup.metrics import Metrics

STATUS = {
    "last_run": {"result": "ok", "finished": "2026-12-04T02:15:40Z", "seconds": 2.5,
                 "steps": {"copy to a": {"ok": True, "seconds": 0.8},
                           "copy to b": {"ok": False, "seconds": 15.1, "error": "down"}}},
    "tiers": {
        "local": {"ok": True, "snapshots": 14, "bytes": 123456,
                  "newest": {"id": "x", "time": "2026-12-04T03:15:00.123456789+01:00"}},
        "a": {"ok": True, "snapshots": 20, "newest": {"id": "x",
                                                      "time": "2026-12-04T02:15:00Z"}},
        "b": {"ok": False, "error": "down", "failed": "2026-12-04T02:15:40Z",
              "snapshots": 5, "newest": {"id": "y", "time": "2026-11-29T02:15:00Z"}},
    },
}


def value(text: str, name: str, **labels: str) -> float:
    return metrics.parse_text(text)[(name, tuple(sorted(labels.items())))]


def test_render_samples_parse_back_equal() -> None:
    m = Metrics()
    m.add("hosting_backup_last_run_success", True, site="s", tier="local")
    m.add("hosting_backup_repository_size_bytes", 2**40 + 1, site="s", tier="local")
    m.add("hosting_backup_last_run_duration_seconds", 1.25, site="s", tier="a")
    assert metrics.parse_text(m.render()) == {
        ("hosting_backup_last_run_success", (("site", "s"), ("tier", "local"))): 1.0,
        ("hosting_backup_repository_size_bytes", (("site", "s"), ("tier", "local"))):
            float(2**40 + 1),
        ("hosting_backup_last_run_duration_seconds", (("site", "s"), ("tier", "a"))): 1.25}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_render_runner_metrics_pass_promtool_check_metrics() -> None:
    text = metrics.runner_metrics("participation", STATUS).render()
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                          capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_render_label_value_quotes_and_newline_escaped() -> None:
    m = Metrics()
    m.add("x", 1, site='a"b\nc\\')
    line = m.render().splitlines()[-1]
    assert line == 'x{site="a\\"b\\nc\\\\"} 1'
    assert metrics.parse_text(m.render())[("x", (("site", 'a\\"b\\nc\\\\'),))] == 1


def test_render_same_labels_twice_raises() -> None:
    m = Metrics()
    m.add("x", 1, site="s")
    m.add("x", 2, site="s")
    with pytest.raises(ValueError, match="twice"):
        m.render()


def test_render_invalid_metric_name_raises() -> None:
    m = Metrics()
    m.add("bad-name", 1)
    with pytest.raises(ValueError, match="bad-name"):
        m.render()


def test_write_textfile_replaces_file_no_temporary_left_mode_0644(tmp_path: Path) -> None:
    path = tmp_path / "t" / "hosting_backup_s.prom"
    metrics.write_textfile(path, "a 1\n")
    metrics.write_textfile(path, "a 2\n")
    assert path.read_text() == "a 2\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["hosting_backup_s.prom"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o755"


def test_write_textfile_failed_rename_keeps_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "hosting_backup_s.prom"
    metrics.write_textfile(path, "a 1\n")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(metrics.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        metrics.write_textfile(path, "a 2\n")
    assert path.read_text() == "a 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["hosting_backup_s.prom"]


def test_write_textfile_name_without_prom_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\*\.prom"):
        metrics.write_textfile(tmp_path / "x.txt", "a 1\n")


def test_runner_metrics_all_tiers_newest_run_size() -> None:
    text = metrics.runner_metrics("s", STATUS).render()
    # 03:15:00.123 +01:00 = 02:15:00.123 UTC
    assert value(text, "hosting_backup_last_snapshot_timestamp_seconds", site="s",
                 tier="local") == pytest.approx(1796350500.123456)
    assert value(text, "hosting_backup_last_run_success", site="s", tier="local") == 1
    assert value(text, "hosting_backup_last_run_timestamp_seconds", site="s",
                 tier="local") == 1796350540
    assert value(text, "hosting_backup_repository_size_bytes", site="s", tier="local") == 123456
    assert value(text, "hosting_backup_last_run_duration_seconds", site="s", tier="a") == 0.8


def test_runner_metrics_failed_push_to_b_success_0_newest_kept() -> None:
    text = metrics.runner_metrics("s", STATUS).render()
    assert value(text, "hosting_backup_last_run_success", site="s", tier="b") == 0
    assert value(text, "hosting_backup_last_snapshot_timestamp_seconds", site="s",
                 tier="b") == 1795918500


def test_runner_failed_local_run_0_snapshot_times_kept() -> None:
    text = metrics.runner_failed("s", STATUS, 3.5, now=1796400000).render()
    assert value(text, "hosting_backup_last_run_success", site="s", tier="local") == 0
    assert value(text, "hosting_backup_last_run_timestamp_seconds", site="s",
                 tier="local") == 1796400000
    assert value(text, "hosting_backup_last_run_duration_seconds", site="s", tier="local") == 3.5
    assert value(text, "hosting_backup_last_snapshot_timestamp_seconds", site="s",
                 tier="a") == 1796350500


def test_runner_failed_no_status_still_writes_failed_run() -> None:
    text = metrics.runner_failed("s", {}, 0.0, now=1.0).render()
    assert metrics.parse_text(text) == {
        ("hosting_backup_last_run_success", (("site", "s"), ("tier", "local"))): 0,
        ("hosting_backup_last_run_timestamp_seconds", (("site", "s"), ("tier", "local"))): 1,
        ("hosting_backup_last_run_duration_seconds", (("site", "s"), ("tier", "local"))): 0}


def test_storage_metrics_check_failed_gives_0_and_rotation_1() -> None:
    record = {"kind": "rotate", "finished": "2026-12-04T11:00:10Z", "errors": ["restic check"],
              "steps": {"forget and prune": {"ok": True}, "check": {"ok": False}}}
    picture = {"snapshots": 14, "bytes": 999, "newest": {"time": "2026-12-04T02:15:00Z"}}
    text = metrics.storage_metrics("s", "a", record, picture, {}).render()
    assert value(text, "hosting_backup_repository_check_success", site="s", tier="a") == 0
    assert value(text, "hosting_backup_rotation_success", site="s", tier="a") == 1
    assert value(text, "hosting_backup_repository_size_bytes", site="s", tier="a") == 999


def test_storage_metrics_check_only_keeps_previous_size() -> None:
    record = {"kind": "check", "finished": "2026-12-04T11:00:10Z", "errors": [],
              "steps": {"check": {"ok": True}}}
    text = metrics.storage_metrics("s", "b", record, None, {"bytes": 5}).render()
    assert value(text, "hosting_backup_repository_size_bytes", site="s", tier="b") == 5
    assert value(text, "hosting_backup_repository_check_success", site="s", tier="b") == 1
    assert ("hosting_backup_rotation_success", (("site", "s"), ("tier", "b"))) not in \
        metrics.parse_text(text)


def _storage(tmp_path: Path, text: str) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / metrics.METRICS_FILE).write_text(text)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "s.json").write_text(json.dumps({"site": "s", "tier": "a",
                                             "state_dir": str(state)}))
    return conf


def test_publish_checked_metrics_installed_for_node_exporter(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(metrics.ENV_DIR, str(tmp_path / "textfile"))
    m = Metrics()
    m.add("hosting_backup_repository_check_success", 1, site="s", tier="a")
    conf = _storage(tmp_path, m.render())
    assert metrics.main(["publish", "--site", "s", "--config-dir", str(conf)]) == 0
    assert (tmp_path / "textfile" / "hosting_backup_s_a.prom").read_text() == m.render()


@pytest.mark.parametrize("text", ['hosting_backup_snapshots{site="other",tier="a"} 1\n',
                                  'node_load1{site="s",tier="a"} 1\n',
                                  'hosting_backup_snapshots{site="s",tier="b"} 1\n'])
def test_publish_other_site_tier_or_metric_refused(tmp_path, monkeypatch, text) -> None:
    monkeypatch.setenv(metrics.ENV_DIR, str(tmp_path / "textfile"))
    conf = _storage(tmp_path, text)
    assert metrics.main(["publish", "--site", "s", "--config-dir", str(conf)]) == 1
    assert not (tmp_path / "textfile").exists()


def test_publish_symlink_left_by_storage_user_not_followed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(metrics.ENV_DIR, str(tmp_path / "textfile"))
    conf = _storage(tmp_path, "")
    target = tmp_path / "state" / metrics.METRICS_FILE
    target.unlink()
    secret = tmp_path / "secret"
    secret.write_text('hosting_backup_snapshots{site="s",tier="a"} 1\n')
    os.symlink(secret, target)
    assert metrics.main(["publish", "--site", "s", "--config-dir", str(conf)]) == 1
    assert not (tmp_path / "textfile").exists()


def test_main_bad_config_writes_failed_run_metric(tmp_path, monkeypatch) -> None:
    from backup import run

    monkeypatch.setenv(metrics.ENV_DIR, str(tmp_path))
    assert run.main(["--site", "s", "--config", str(tmp_path / "missing.json")]) == \
        run.EXIT_USAGE
    text = (tmp_path / "hosting_backup_s.prom").read_text()
    assert value(text, "hosting_backup_last_run_success", site="s", tier="local") == 0


def test_timestamp_restic_nanoseconds_and_offset() -> None:
    assert metrics.timestamp("2026-12-04T03:15:00.123456789+01:00") == pytest.approx(
        1796350500.123456)
    assert metrics.timestamp(None) is None
