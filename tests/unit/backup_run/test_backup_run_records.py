"""What a backup records for its restore (backup.records, backup.dumpsum): the dump's sha256
computed on its way to restic and written as the dump's last line (older backups: a tag),
the owners' ids digest, and the local listing kept between runs and used only while it is
exact. No restic needed here: test_backup_run_restic.py and
test_backup_run_restore.py check the same against real repositories."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from backup_run_helpers import REPO

from backup.dumpsum import (
    TRAILER_LEN,
    TRAILER_PREFIX,
    copy_hashing_body,
    parse_trailer,
    pass_through,
    trailer_line,
)
from backup.records import (
    LISTING_FILE,
    cached_listing,
    dump_tag,
    ids_digest,
    is_record,
    save_listing,
    tag_value,
)
from backup.status import tier_summary

DUMPSUM = REPO / "backup" / "dumpsum.py"


def dumpsum(*command: str) -> subprocess.CompletedProcess[bytes]:
    """dumpsum.py as restic runs it: by path, isolated, in a minimal environment."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(DUMPSUM), "--", *command],
        capture_output=True, env={"PATH": os.environ["PATH"]}, timeout=60)


def body_and_trailer(data: bytes) -> tuple[bytes, str | None]:
    return data[:-TRAILER_LEN], parse_trailer(data[-TRAILER_LEN:])


def test_pass_through_a_dump_is_copied_unchanged_then_ends_with_its_trailer(
        tmp_path: Path) -> None:
    source = tmp_path / "dump.sql"
    source.write_bytes(os.urandom(3 << 20) + b"INSERT INTO t VALUES (1);\n")
    with open(tmp_path / "copy", "wb") as out:
        status, sha256, size = pass_through(["cat", str(source)], out.fileno())
    assert status == 0
    data = source.read_bytes()
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    copied = (tmp_path / "copy").read_bytes()
    assert copied == data + trailer_line(sha256)
    assert body_and_trailer(copied) == (data, sha256)


def test_pass_through_a_last_line_without_newline_gets_one_before_the_trailer(
        tmp_path: Path) -> None:
    with open(tmp_path / "copy", "wb") as out:
        status, sha256, size = pass_through(["printf", "SELECT 1;"], out.fileno())
    assert status == 0
    copied = (tmp_path / "copy").read_bytes()
    assert copied.splitlines()[-1] == trailer_line(sha256).rstrip(b"\n")  # a line of its own
    assert body_and_trailer(copied) == (b"SELECT 1;\n", hashlib.sha256(b"SELECT 1;\n").hexdigest())
    assert size == 10


def test_main_a_dump_that_succeeds_ends_with_a_trailer_matching_its_body_and_exits_0(
        tmp_path: Path) -> None:
    proc = dumpsum("sh", "-c", "echo 'INSERT INTO t VALUES (1);'")
    assert proc.returncode == 0, proc.stderr
    body = b"INSERT INTO t VALUES (1);\n"
    assert proc.stdout == body + trailer_line(hashlib.sha256(body).hexdigest())
    # What the restore does with it: the body's sha256 and the trailer's agree.
    source, sink = tmp_path / "dump", tmp_path / "loaded"
    source.write_bytes(proc.stdout)
    with open(source, "rb") as src, open(sink, "wb") as out:
        streamed, size, recorded = copy_hashing_body(src.fileno(), out.fileno())
    assert streamed == recorded == hashlib.sha256(body).hexdigest()
    assert size == len(proc.stdout) and sink.read_bytes() == proc.stdout


def test_main_a_dump_failing_half_way_exits_with_its_status_and_writes_no_trailer(
        tmp_path: Path) -> None:
    proc = dumpsum("sh", "-c", "echo 'INSERT INTO t'; echo lost >&2; exit 2")
    assert proc.returncode == 2  # restic then fails the backup: no snapshot
    assert proc.stdout == b"INSERT INTO t\n" and b"lost" in proc.stderr
    assert TRAILER_PREFIX not in proc.stdout


def test_main_a_dump_killed_by_a_signal_exits_128_plus_the_signal(tmp_path: Path) -> None:
    proc = dumpsum("sh", "-c", "echo partial; kill -9 $$")
    assert proc.returncode == 128 + 9
    assert proc.stdout == b"partial\n"  # no trailer


def test_main_a_missing_dump_program_exits_127(tmp_path: Path) -> None:
    proc = dumpsum(str(tmp_path / "no-such-dump"))
    assert proc.returncode == 127 and b"no-such-dump" in proc.stderr
    assert proc.stdout == b""


def test_main_without_a_dump_command_is_a_usage_error() -> None:
    proc = dumpsum()  # "--" alone: no dump command
    assert proc.returncode == 2 and b"usage" in proc.stderr and proc.stdout == b""


def test_main_the_old_sumfile_form_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(DUMPSUM), str(tmp_path / "sum"), "--", "echo", "x"],
        capture_output=True, env={"PATH": os.environ["PATH"]}, timeout=60)
    assert proc.returncode == 2 and b"usage" in proc.stderr and proc.stdout == b""
    assert not (tmp_path / "sum").exists()


def test_copy_hashing_body_a_stream_without_trailer_is_all_body(tmp_path: Path) -> None:
    data = b"INSERT INTO t VALUES (1);\n" * 5
    (tmp_path / "old").write_bytes(data)
    with open(tmp_path / "old", "rb") as src, open(os.devnull, "wb") as out:
        assert copy_hashing_body(src.fileno(), out.fileno()) == (
            hashlib.sha256(data).hexdigest(), len(data), None)


def test_dump_tag_a_value_that_is_no_sha256_is_refused() -> None:
    assert tag_value({"tags": ["files", dump_tag("0f" * 32)]}, "dump-sha256=") == "0f" * 32
    assert tag_value({"tags": ["files"]}, "dump-sha256=") is None
    assert tag_value({}, "dump-sha256=") is None  # restic omits "tags" when there are none
    with pytest.raises(ValueError):
        dump_tag("0F" * 32)
    with pytest.raises(ValueError):
        dump_tag("0f" * 31)


def _etc(root: Path, passwd: str, group: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "passwd").write_text(passwd)
    (root / "group").write_text(group)
    return root


def test_ids_digest_same_names_and_ids_in_another_order_are_equal(tmp_path: Path) -> None:
    a = _etc(tmp_path / "a", "root:x:0:0::/root:/bin/sh\nweb:x:1001:1001::/srv:/bin/sh\n",
             "root:x:0:\nweb:x:1001:\n")
    b = _etc(tmp_path / "b", "web:x:1001:1001:Web:/home/web:/usr/sbin/nologin\n"
             "root:x:0:0:root:/root:/bin/bash\n", "web:x:1001:www-data\nroot:x:0:\n")
    assert ids_digest(a) == ids_digest(b) is not None


def test_ids_digest_another_id_for_a_name_differs(tmp_path: Path) -> None:
    a = _etc(tmp_path / "a", "web:x:1001:1001::/srv:/bin/sh\n", "web:x:1001:\n")
    b = _etc(tmp_path / "b", "web:x:1002:1001::/srv:/bin/sh\n", "web:x:1001:\n")
    c = _etc(tmp_path / "c", "web:x:1001:1001::/srv:/bin/sh\n", "web:x:1003:\n")
    assert len({ids_digest(a), ids_digest(b), ids_digest(c)}) == 3
    assert ids_digest(tmp_path / "missing") is None


def _repo(root: Path, ids: list[str]) -> Path:
    (root / "snapshots").mkdir(parents=True)
    (root / "config").write_text("encrypted")
    for snapshot_id in ids:
        (root / "snapshots" / snapshot_id).write_text("encrypted")
    return root


def _entry(snapshot_id: str) -> dict:
    return {"id": snapshot_id, "time": "2025-01-05T03:15:00+01:00", "tags": ["db"],
            "hostname": "web-demo", "short_id": snapshot_id[:8]}


def test_cached_listing_naming_exactly_the_snapshot_files_is_used(tmp_path: Path) -> None:
    ids = ["1" * 64, "2" * 64]
    repo = _repo(tmp_path / "repo", ids)
    save_listing(str(tmp_path / "state"), str(repo), [_entry(i) for i in ids])
    listing = cached_listing(str(tmp_path / "state"), str(repo))
    assert [s["id"] for s in listing or []] == ids
    assert "short_id" not in (listing or [{}])[0]  # only what the runner reads is kept


def test_cached_listing_a_repository_without_snapshots_is_empty_even_without_a_listing(
        tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo", [])
    assert cached_listing(str(tmp_path / "state"), str(repo)) == []
    save_listing(str(tmp_path / "state"), str(repo), [_entry("1" * 64)])  # re-created repo
    assert cached_listing(str(tmp_path / "state"), str(repo)) == []


@pytest.mark.parametrize("change", ["added", "removed", "other repository", "no listing",
                                    "not a repository", "garbage"])
def test_cached_listing_not_matching_the_repository_is_not_used(tmp_path: Path,
                                                                change: str) -> None:
    ids = ["1" * 64, "2" * 64]
    repo = _repo(tmp_path / "repo", ids)
    state = tmp_path / "state"
    save_listing(str(state), str(repo), [_entry(i) for i in ids])
    location = str(repo)
    if change == "added":  # a snapshot taken outside the runner (or restic tag's new id)
        (repo / "snapshots" / ("3" * 64)).write_text("encrypted")
    elif change == "removed":  # a snapshot forgotten outside the runner
        (repo / "snapshots" / ("2" * 64)).unlink()
    elif change == "other repository":
        location = str(_repo(tmp_path / "other", ids))
    elif change == "no listing":
        (state / LISTING_FILE).unlink()
    elif change == "not a repository":
        (repo / "config").unlink()
    elif change == "garbage":
        (state / LISTING_FILE).write_text('{"repository": 1')
    assert cached_listing(str(state), location) is None


def test_tier_summary_record_tags_are_not_counted() -> None:
    snaps = [{"id": "a", "time": "2025-01-05T02:15:00Z", "tags": ["weekly", "db"]},
             {"id": "b", "time": "2025-01-05T02:15:00Z",
              "tags": ["weekly", "files", dump_tag("0f" * 32), "ids-sha256=0123456789abcdef"]}]
    summary = tier_summary(snaps)
    assert summary["by_tag"] == {"weekly": 2, "db": 1, "files": 1}
    assert is_record("ids-sha256=0123456789abcdef") and not is_record("weekly")
    assert json.dumps(summary)  # still plain JSON for status.json
