"""The host-side restore's checks and costs against REAL restic 0.18 repositories: the dump's
sha256 recorded at backup time checked against the dump streamed into the client, the
re-dump kept for backups without it, a replaced dump or record caught, and no restic
invocation beyond the files and the dump when nothing else is needed."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import pytest
from backup_run_helpers import Site

from backup import config as config_mod
from backup.records import DUMP_SHA256, IDS_SHA256, dump_tag, tag_value
from backup.restore import EXIT_VERIFY

DAY1 = "2025-01-05T03:15:00+01:00"
DAY1_UTC = "2025-01-05 02:15:00"


def restored(site: Site, *args: str) -> dict:
    proc = site.restore(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["restore"]


def dump_source(site: Site) -> bytes:
    return (site.root / "bin" / "dump-source.sql").read_bytes()


def night(site: Site, kind: str, tier: str = "local") -> dict:
    return next(s for s in site.snapshots(tier) if kind in s["tags"])


def test_restore_with_a_recorded_sha256_streams_the_dump_once_and_never_redumps(
        site: Site) -> None:
    assert site.run(DAY1, "--local-only").returncode == 0
    site.log_restic()
    site.dump_fails()  # a re-dump of the "database" would now fail the restore
    seen = site.root / "bin" / "dump-seen"
    seen.unlink()
    result = restored(site, "--from", "local")
    assert not seen.exists()  # the dump program never ran
    assert sorted(site.restic_calls()) == ["dump", "restore"]  # the kept listing: no snapshots
    assert result["listing"] == "kept by the runner"
    expected = hashlib.sha256(dump_source(site)).hexdigest()
    assert result["verify"]["matches_snapshot"] is True
    assert result["verify"]["recorded_sha256"] == result["verify"]["streamed_sha256"] == expected
    assert "dump_sha256" not in result["verify"]
    assert (site.root / "bin" / "loaded.sql").read_bytes() == dump_source(site)
    assert result["database"]["bytes"] == len(dump_source(site))


def test_restore_on_a_host_with_the_backups_ids_stages_no_users_nor_config(site: Site) -> None:
    assert site.run(DAY1, "--local-only").returncode == 0
    site.log_restic()
    result = restored(site, "--from", "local")
    assert sorted(site.restic_calls()) == ["dump", "restore"]
    assert result["files"]["owners_remapped"] == 0
    assert result["config"]["staged_in"] is None
    assert not (site.state_dir / "restored-config").exists()
    assert not list(site.state_dir.glob("restore-ids-*"))


def test_restore_on_a_host_with_other_ids_stages_users_and_groups_then_drops_them(
        site: Site) -> None:
    assert site.run(DAY1, "--local-only").returncode == 0
    files = night(site, "files")
    recorded = f"{IDS_SHA256}{tag_value(files, IDS_SHA256)}"
    other = f"{IDS_SHA256}{'0' * 16}"  # as if the backup came from a host with other ids
    proc = site.restic_cmd("local", "tag", "--remove", recorded, "--add", other, files["id"])
    assert proc.returncode == 0, proc.stderr
    site.log_restic()
    result = restored(site, "--from", "local")
    # restic tag gave the files snapshot a new id: the kept listing is stale, restic lists.
    assert sorted(site.restic_calls()) == ["dump", "restore", "restore", "snapshots"]
    assert result["listing"] == "restic snapshots"
    assert "users and groups" in result["timings"]
    assert result["files"]["owners_remapped"] == 0  # the snapshot holds no /etc/passwd here
    assert not list(site.state_dir.glob("restore-ids-*"))  # the staged tables are removed
    assert result["verify"]["matches_snapshot"] is True


def test_restore_a_snapshot_without_recorded_sha256_is_verified_by_a_redump(site: Site) -> None:
    """A backup taken before the runner recorded the dump's sha256: the same two snapshots,
    made with the same restic command lines as that runner made them."""
    cfg = config_mod.load(site.config_path)
    when = datetime.fromisoformat(DAY1)
    tags = ["weekly", "monthly"]
    cfg.restic.run(cfg.restic.backup_command_argv(
        cfg.local, cfg.database.dump_command(), cfg.dump_filename, [*tags, "db"], cfg.host,
        when), "old-style dump")
    cfg.restic.run(cfg.restic.backup_paths_argv(
        cfg.local, cfg.paths, cfg.excludes, [*tags, "files"], cfg.host, when), "old-style files")
    assert tag_value(night(site, "files"), DUMP_SHA256) is None
    result = restored(site, "--from", "local")
    verify = result["verify"]
    assert verify["method"].startswith("re-dump")
    assert verify["matches_snapshot"] is True
    assert verify["dump_sha256"] == verify["streamed_sha256"] == hashlib.sha256(
        dump_source(site)).hexdigest()
    assert (site.root / "bin" / "loaded.sql").read_bytes() == dump_source(site)
    # The fallback check is a real one: a database that differs from the dump fails it.
    (site.root / "bin" / "dump-source.sql").write_text("INSERT INTO t VALUES (1,'other');\n")
    proc = site.restore("--from", "local")
    assert proc.returncode == EXIT_VERIFY
    assert json.loads(proc.stdout)["restore"]["verify"]["matches_snapshot"] is False
    assert "differs from the snapshot" in proc.stderr


@pytest.mark.parametrize("tampered", ["dump replaced", "record replaced"])
def test_restore_a_dump_not_matching_its_recorded_sha256_fails_the_check(
        site: Site, tampered: str) -> None:
    assert site.run(DAY1, "--local-only").returncode == 0
    db, files = night(site, "db"), night(site, "files")
    if tampered == "dump replaced":
        # Another dump in place of the night's: same time, host and tags, other content.
        cfg = config_mod.load(site.config_path)
        cfg.restic.run(cfg.restic.backup_command_argv(
            cfg.local, ["sh", "-c", "echo \"INSERT INTO t VALUES (1,'forged');\""],
            cfg.dump_filename, db["tags"], cfg.host, datetime.fromisoformat(DAY1)), "forge")
        assert site.restic_cmd("local", "forget", db["id"]).returncode == 0
    else:
        old = f"{DUMP_SHA256}{tag_value(files, DUMP_SHA256)}"
        proc = site.restic_cmd("local", "tag", "--remove", old, "--add", dump_tag("0" * 64),
                               files["id"])
        assert proc.returncode == 0, proc.stderr
    proc = site.restore("--from", "local")
    assert proc.returncode == EXIT_VERIFY, proc.stderr
    verify = json.loads(proc.stdout)["restore"]["verify"]
    assert verify["matches_snapshot"] is False
    assert verify["streamed_sha256"] != verify["recorded_sha256"]
    assert "the restored database differs from the snapshot's dump" in proc.stderr


def test_restore_with_stage_config_stages_the_hosts_configuration_beside_the_live_one(
        site: Site) -> None:
    cfg = site.config()
    cfg["paths"].append("/etc/hostname")  # a host configuration file (read-only here)
    site.config_path.write_text(json.dumps(cfg))
    assert site.run(DAY1, "--local-only").returncode == 0
    site.log_restic()
    result = restored(site, "--from", "local", "--stage-config")
    assert sorted(site.restic_calls()) == ["dump", "restore", "restore"]
    staged = result["config"]["staged_in"]
    assert staged and (site.state_dir / "restored-config").is_dir()
    with open("/etc/hostname", "rb") as live, open(f"{staged}/etc/hostname", "rb") as copy:
        assert copy.read() == live.read()
    assert result["config"]["differs_from_live"] == []
    assert [p.name for p in Path(staged).iterdir()] == ["etc"]  # only the configuration


def test_restore_with_stage_config_and_no_etc_paths_restores_nothing_beside(site: Site) -> None:
    assert site.run(DAY1, "--local-only").returncode == 0
    site.log_restic()
    result = restored(site, "--from", "local", "--stage-config")
    # Without an /etc path there is nothing to stage: `restic restore` without --include
    # would have restored the whole snapshot into the stage.
    assert sorted(site.restic_calls()) == ["dump", "restore"]
    assert result["config"]["staged_in"] is None
    assert not (site.state_dir / "restored-config").exists()


def test_restore_with_the_private_files_unmounted_touches_neither_files_nor_database(
        site: Site) -> None:
    assert site.run(DAY1, "--local-only").returncode == 0
    cfg = site.config()
    cfg["required_mounts"] = [str(site.files / "private")]  # a directory, not a mount
    site.config_path.write_text(json.dumps(cfg))
    (site.code / "index.php").unlink()
    site.log_restic()
    proc = site.restore("--from", "local")
    assert proc.returncode == 1 and "is not mounted" in proc.stderr
    assert site.restic_calls() == []
    assert not (site.root / "bin" / "loaded.sql").exists()  # the database was not loaded
    assert not (site.code / "index.php").exists()
