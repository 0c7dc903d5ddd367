"""The pure parts of the restore (issue 11): which backup it chooses (the safety snapshot only
by its id), the SQL of the database swap, the grouping of the files swap by filesystem, the
check of the streamed dump, which configuration may be put back, and that every error of the
parallel steps is reported. No restic, no root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from backup_run_helpers import REPO  # noqa: F401 - puts the repository on sys.path

from backup import swap
from backup.restore_choose import choose
from backup.restore_config import config_restorable
from backup.restore_db import (
    RestoreError,
    check_stream,
    ident,
    rename_sql,
    side_names,
    swap_back_sql,
)
from backup.restore_site import run_all
from backup.snapshots import parse_restic_time

HOST = "web-demo"


def entry(sid: str, time: str, *tags: str, host: str = HOST) -> dict:
    return {"id": sid * 8, "time": time, "tags": list(tags), "hostname": host}


NIGHT1 = [entry("aaaaaaa1", "2025-01-05T03:15:00+01:00", "weekly", "db"),
          entry("aaaaaaa2", "2025-01-05T03:15:00+01:00", "weekly", "files")]
NIGHT2 = [entry("bbbbbbb1", "2025-01-06T03:15:00+01:00", "db"),
          entry("bbbbbbb2", "2025-01-06T03:15:00+01:00", "files")]
SAFE = [entry("ccccccc1", "2025-01-06T14:00:00+01:00", "safety", "safety-expires=2025-01-13",
              "db"),
        entry("ccccccc2", "2025-01-06T14:00:00+01:00", "safety", "safety-expires=2025-01-13",
              "files")]
ALL = NIGHT1 + NIGHT2 + SAFE


def test_choose_newest_never_picks_a_safety_snapshot() -> None:
    db, files = choose(ALL, HOST, None)
    assert (db["id"][:8], files["id"][:8]) == ("bbbbbbb1", "bbbbbbb2")


def test_choose_at_a_date_picks_that_nights_backup() -> None:
    db, files = choose(ALL, HOST, parse_restic_time("2025-01-05T23:59:59+01:00"))
    assert (db["id"][:8], files["id"][:8]) == ("aaaaaaa1", "aaaaaaa2")


@pytest.mark.parametrize("prefix", ["ccccccc1", "ccccccc2cc"])
def test_choose_by_snapshot_id_of_either_half_picks_the_safety_pair(prefix: str) -> None:
    db, files = choose(ALL, HOST, None, prefix)
    assert (db["id"][:8], files["id"][:8]) == ("ccccccc1", "ccccccc2")


def test_choose_by_snapshot_id_pairs_a_night_not_the_safety_of_the_same_day() -> None:
    db, files = choose(ALL, HOST, None, "bbbbbbb2")
    assert (db["id"][:8], files["id"][:8]) == ("bbbbbbb1", "bbbbbbb2")


@pytest.mark.parametrize(("prefix", "message"), [
    ("abc", "at least 8 hex digits"),
    ("ddddddd1", "no snapshot of this site"),
    ("NOTHEX!!", "at least 8 hex digits"),
])
def test_choose_by_a_bad_snapshot_id_raises_naming_the_option(prefix: str, message: str) -> None:
    with pytest.raises(RestoreError, match=message) as error:
        choose(ALL, HOST, None, prefix)
    assert "--snapshot" in str(error.value)


def test_choose_by_snapshot_id_of_a_lone_half_raises() -> None:
    with pytest.raises(RestoreError, match="database or files half is missing"):
        choose(NIGHT1[:1], HOST, None, "aaaaaaa1")


def test_choose_another_hosts_snapshot_is_never_chosen() -> None:
    other = [entry("eeeeeee1", "2025-01-07T03:15:00+01:00", "db", host="web-other"),
             entry("eeeeeee2", "2025-01-07T03:15:00+01:00", "files", host="web-other")]
    with pytest.raises(RestoreError, match="no snapshot of this site"):
        choose(ALL + other, HOST, None, "eeeeeee1")


def test_rename_sql_moves_every_live_table_out_and_every_side_table_in_in_one_statement() -> None:
    sql = rename_sql("site", "site_restore", "site_prerestore", ["a", "b"], ["a", "c"])
    assert sql == ("RENAME TABLE `site`.`a` TO `site_prerestore`.`a`,\n"
                   "  `site`.`b` TO `site_prerestore`.`b`,\n"
                   "  `site_restore`.`a` TO `site`.`a`,\n"
                   "  `site_restore`.`c` TO `site`.`c`;\n")
    assert sql.count("RENAME TABLE") == 1


def test_swap_back_sql_undoes_rename_sql() -> None:
    sql = swap_back_sql("site", "site_restore", "site_prerestore", ["a", "b"], ["a", "c"])
    assert sql == ("RENAME TABLE `site`.`a` TO `site_restore`.`a`,\n"
                   "  `site`.`c` TO `site_restore`.`c`,\n"
                   "  `site_prerestore`.`a` TO `site`.`a`,\n"
                   "  `site_prerestore`.`b` TO `site`.`b`;\n")


def test_rename_sql_with_no_tables_anywhere_is_empty() -> None:
    assert rename_sql("s", "s_restore", "s_prerestore", [], []) == ""


@pytest.mark.parametrize("name", ["a`b", "drop table x", "", "é"])
def test_ident_unsafe_names_raise(name: str) -> None:
    with pytest.raises(RestoreError, match="unsafe SQL identifier"):
        ident(name)


def test_side_names_of_a_too_long_database_raise() -> None:
    assert side_names("villeparisis") == ("villeparisis_restore", "villeparisis_prerestore")
    with pytest.raises(RestoreError, match="too long"):
        side_names("d" * 60)


def test_check_stream_prefers_the_trailer_then_the_tag_then_nothing() -> None:
    streamed = {"sha256": "1" * 64, "trailer_sha256": "1" * 64}
    assert check_stream(streamed, "2" * 64)["matches"] is True  # the trailer wins
    assert "trailer" in check_stream(streamed, None)["method"]
    untrailed = {"sha256": "1" * 64, "trailer_sha256": None}
    tagged = check_stream(untrailed, "2" * 64)
    assert tagged["matches"] is False and "dump-sha256 tag" in tagged["method"]
    nothing = check_stream(untrailed, None)
    assert nothing["matches"] is None and nothing["method"].startswith("re-dump")


def test_check_stream_marked_snapshot_without_trailer_refused_as_cut() -> None:
    cut = {"sha256": "1" * 64, "trailer_sha256": None}
    checked = check_stream(cut, None, expects_trailer=True)
    assert checked["matches"] is False and "missing" in checked["recorded_sha256"]
    assert check_stream(cut, None, expects_trailer=False)["matches"] is None  # older backups


def test_swap_plan_puts_the_private_files_side_inside_their_mount() -> None:
    root = "/srv/s"
    groups = swap.plan(root, [f"{root}/releases", f"{root}/current", f"{root}/shared/files",
                              f"{root}/private"], [f"{root}/private"])
    assert [(g.base, g.paths, g.mount) for g in groups] == [
        (root, (f"{root}/releases", f"{root}/current", f"{root}/shared/files"), None),
        (f"{root}/private", (f"{root}/private",), f"{root}/private")]
    assert groups[1].side("t0k3n") == f"{root}/private/.restore-t0k3n"  # encrypted (R-GDPR-1)


def test_swap_plan_a_path_outside_the_root_raises() -> None:
    with pytest.raises(swap.SwapError, match="outside the site's root"):
        swap.plan("/srv/s", ["/etc/nginx"], [])


def test_file_swap_moves_a_mount_points_entries_and_swaps_back(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    private, code = root / "private", root / "code"
    private.mkdir(parents=True)
    code.mkdir()
    (private / "live.txt").write_text("live")
    (code / "index.php").write_text("live code")
    groups = swap.plan(str(root), [str(code), str(private)], [str(private)])
    for g in groups:
        swap.make_side(g, "tok")
        for p in g.paths:
            restored = Path(swap.restored_path(g, "tok", p))
            restored.mkdir(parents=True)
            (restored / "restored.txt").write_text("restored")
    fs = swap.FileSwap(groups, "tok")
    fs.check()
    assert fs.swap_in() == 4
    assert sorted(os.listdir(private)) == [".prerestore-tok", ".restore-tok", "restored.txt"]
    assert sorted(os.listdir(code)) == ["restored.txt"]
    assert fs.swap_back() == []
    assert (private / "live.txt").read_text() == "live"
    assert (code / "index.php").read_text() == "live code"
    assert not (root / ".prerestore-tok").exists() and not (private / ".prerestore-tok").exists()


def test_file_swap_check_names_a_path_missing_from_the_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    (root / "code").mkdir(parents=True)
    groups = swap.plan(str(root), [str(root / "code")], [])
    swap.make_side(groups[0], "tok")
    with pytest.raises(swap.SwapError, match="not in the restored snapshot: .*code"):
        swap.FileSwap(groups, "tok").check()


def test_run_all_reports_every_failure_not_only_the_first() -> None:
    def boom(message: str):
        def job() -> None:
            raise RuntimeError(message)
        return job

    results, errors = run_all({"files": boom("disk full"), "database": boom("dump cut"),
                               "config": lambda: "ok"})
    assert results == {"config": "ok"}
    assert errors == ["files: disk full", "database: dump cut"]


@pytest.mark.parametrize("path", [
    "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/hosting/villeparisis/db.cnf",
    "/etc/hosting/villeparisis/private.pass", "/etc/hosting/villeparisis/hash_salt",
    "/etc/hosting/villeparisis/settings.local.php", "/etc/hosting/backup/villeparisis.password",
    "/etc/mysql/debian.cnf", "/etc/ssh/ssh_host_ed25519_key", "/etc/nginx/tls/site.key",
])
def test_config_restorable_refuses_secrets_and_ids_of_the_old_host(path: str) -> None:
    assert config_restorable(path) is False


@pytest.mark.parametrize("path", [
    "/etc/nginx/sites-available/villeparisis.conf", "/etc/php/8.4/fpm/pool.d/villeparisis.conf",
    "/etc/systemd/system/hosting-cron-villeparisis.timer", "/etc/mysql/mariadb.conf.d/90.cnf",
])
def test_config_restorable_allows_service_configuration(path: str) -> None:
    assert config_restorable(path) is True


def test_differs_compares_links_by_target_and_files_by_content(tmp_path: Path) -> None:
    from backup.restore_config import _differs

    staged, live = tmp_path / "staged", tmp_path / "live"
    staged.mkdir()
    live.mkdir()
    (staged / "masked").symlink_to("/dev/null")
    (live / "masked").symlink_to("/dev/null")
    (staged / "other").symlink_to("/dev/null")
    (live / "other").symlink_to("/lib/systemd/system/x.service")
    (staged / "conf").write_text("a")
    (live / "conf").write_text("b")
    (staged / "same").write_text("c")
    (live / "same").write_text("c")
    assert not _differs(staged / "masked", live / "masked")
    assert _differs(staged / "other", live / "other")
    assert _differs(staged / "conf", live / "conf")
    assert not _differs(staged / "same", live / "same")
    assert _differs(staged / "same", live / "missing")
