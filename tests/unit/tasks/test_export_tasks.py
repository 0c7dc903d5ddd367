"""`fab export`'s admin side (issue 16, R-DATA-1): the on-host command line, the refusals that
name the field before anything connects, the bytes streamed from the SSH channel, the archive
checked against its manifest, and FILE written 0600 only after success (never a partial one)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from engine.inventory import Inventory
from tasks import export_tasks
from tasks.export_tasks import (
    ExportTaskError,
    check_destination,
    check_file,
    host_argv,
    host_summary,
    run_export,
    stream_command,
)

KEY = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


def archive(files: dict[str, bytes], tamper: str = "") -> bytes:
    """An export as backup.export writes it: the members, then manifest.json."""
    out = io.BytesIO()
    members = [{"name": n, "type": "file", "size": len(c),
                "sha256": hashlib.sha256(c).hexdigest()} for n, c in files.items()]
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            data = b"tampered" if name == tamper else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        doc = json.dumps({"format": "hosting-export/1", "members": members}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(doc)
        tar.addfile(info, io.BytesIO(doc))
    return out.getvalue()


def test_host_argv_recipient_runs_the_runner_export_with_it() -> None:
    argv = host_argv("villeparisis", KEY, False, "", "", "local")
    assert argv[:2] == ["env", "PYTHONPATH=/usr/local/lib/hosting/backup-runner"]
    assert argv[3:] == ["-m", "backup.export", "--site", "villeparisis", "--from", "local",
                        "--recipient", KEY]


def test_host_argv_snapshot_pair_becomes_two_snapshot_options() -> None:
    argv = host_argv("s", "", True, "", "0123abcd,4567cdef", "a")
    assert argv[-5:] == ["--snapshot", "0123abcd", "--snapshot", "4567cdef", "--plain"]


def test_host_argv_at_and_snapshot_together_raise_naming_both() -> None:
    with pytest.raises(ExportTaskError, match="--at and --snapshot"):
        host_argv("s", KEY, False, "2026-03-01", "0123abcd", "local")


def test_host_argv_recipient_and_plain_together_raise_naming_both() -> None:
    with pytest.raises(ExportTaskError, match="--recipient and --plain"):
        host_argv("s", KEY, True, "", "", "local")


def test_host_argv_no_recipient_without_plain_raises_naming_recipient() -> None:
    with pytest.raises(ExportTaskError, match="--recipient: the client's age public key"):
        host_argv("s", "", False, "", "", "local")


def test_host_argv_secret_key_as_recipient_raises_without_echoing_it() -> None:
    secret = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQ"
    with pytest.raises(ExportTaskError, match=r"--recipient \(not shown\)") as info:
        host_argv("s", secret, False, "", "", "local")
    assert "QYQSZ" not in str(info.value)


def test_host_argv_offsite_tier_without_a_chosen_backup_raises_naming_from() -> None:
    with pytest.raises(ExportTaskError, match="--from a: give --at or --snapshot"):
        host_argv("s", KEY, False, "", "", "a")


def test_check_destination_existing_file_without_force_raises_naming_to(tmp_path: Path) -> None:
    (tmp_path / "out.age").write_bytes(b"old")
    with pytest.raises(ExportTaskError, match="--to .*out.age: exists; give --force"):
        check_destination(str(tmp_path / "out.age"), False)
    assert check_destination(str(tmp_path / "out.age"), True) == tmp_path / "out.age"


def test_check_destination_missing_directory_raises_naming_to(tmp_path: Path) -> None:
    with pytest.raises(ExportTaskError, match="--to .*: directory .*nowhere does not exist"):
        check_destination(str(tmp_path / "nowhere" / "out.age"), False)


def test_check_destination_directory_raises_naming_to(tmp_path: Path) -> None:
    with pytest.raises(ExportTaskError, match="is a directory"):
        check_destination(str(tmp_path), True)


class FakeChannel:
    """What stream_command uses of a paramiko Channel: stdout in chunks, stderr, a status."""

    def __init__(self, out: bytes, err: bytes, status: int) -> None:
        self.out, self.err, self.status = out, err, status
        self.command = ""
        self.closed = self.write_shut = False

    def settimeout(self, _t: float) -> None: ...

    def exec_command(self, command: str) -> None:
        self.command = command

    def shutdown_write(self) -> None:
        self.write_shut = True

    def recv(self, n: int) -> bytes:
        chunk, self.out = self.out[:min(n, 1000)], self.out[min(n, 1000):]
        return chunk

    def makefile_stderr(self, _mode: str) -> io.BytesIO:
        return io.BytesIO(self.err)

    def recv_exit_status(self) -> int:
        return self.status

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    def __init__(self, channel: FakeChannel) -> None:
        self.channel = channel
        transport = type("T", (), {"open_session": lambda _s, timeout: channel})()
        self.client = type("C", (), {"get_transport": lambda _s: transport})()

    def open(self) -> None: ...


def test_stream_command_writes_every_byte_and_returns_status_and_stderr(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 123
    channel = FakeChannel(payload, b"export s: ok\n", 0)
    out = tmp_path / "out"
    with out.open("wb") as f:
        code, err, size = stream_command(FakeConnection(channel), "sudo -n true", f.fileno())
    assert (code, err, size) == (0, "export s: ok\n", len(payload))
    assert out.read_bytes() == payload
    assert channel.command == "sudo -n true" and channel.write_shut and channel.closed


def test_check_file_plain_archive_matching_manifest_returns_it(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(archive({"database/s.sql": b"SQL\n", "files/public/a.txt": b"a"}))
    assert len(check_file(path)["members"]) == 2


def test_check_file_tampered_member_raises_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(archive({"database/s.sql": b"SQL\n", "files/public/a.txt": b"a"},
                             tamper="files/public/a.txt"))
    with pytest.raises(ExportTaskError, match="files/public/a.txt: 8 bytes"):
        check_file(path)


def test_check_file_archive_without_manifest_raises(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("database/s.sql")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"SQL"))
    path = tmp_path / "a.tar"
    path.write_bytes(out.getvalue())
    with pytest.raises(ExportTaskError, match="no manifest.json"):
        check_file(path)


@pytest.mark.skipif(shutil.which("age") is None, reason="age is not installed "
                    "(scripts/install-system-deps installs it)")
def test_check_file_encrypted_archive_with_identity_decrypts_in_a_pipe(tmp_path: Path) -> None:
    identity = tmp_path / "key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                               capture_output=True, text=True).stdout.strip()
    path = tmp_path / "a.tar.age"
    path.write_bytes(subprocess.run(["age", "-r", recipient],
                                    input=archive({"database/s.sql": b"SQL\n"}),
                                    capture_output=True, check=True).stdout)
    assert check_file(path, str(identity))["members"][0]["name"] == "database/s.sql"
    assert set(tmp_path.iterdir()) == {identity, path}  # nothing decrypted left beside


def test_host_summary_reads_the_manifest_line() -> None:
    err = 'export s: ok\nmanifest {"site": "s", "created": "2026-01-01T00:00:00Z"}\n'
    assert host_summary(err)["created"] == "2026-01-01T00:00:00Z"
    assert host_summary("no such line\n") == {}


def test_run_export_unknown_site_raises_naming_site(prod: Inventory, tmp_path: Path) -> None:
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps(prod.doc))
    with pytest.raises(ExportTaskError, match="--site 'nosuch': no site 'nosuch'"):
        run_export("prod", "nosuch", str(tmp_path / "out.age"), KEY, inventory=str(inv),
                   emit=lambda _m: None)
    assert list(tmp_path.iterdir()) == [inv]


@pytest.fixture
def fake_host(prod: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> dict[str, Any]:
    """run_export against a fake web host: the inventory is prod's, the SSH stream is
    replaced (what the host would print, its exit status)."""
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps(prod.doc))
    host: dict[str, Any] = {"inventory": str(inv), "out": b"", "err": "", "code": 0}

    class Access:
        def __init__(self, *_a: Any) -> None: ...

        def connection(self, h: Any) -> Any:
            host["host"] = h.name
            return None

        def close(self) -> None: ...

    def stream(_conn: Any, command: str, fd: int) -> tuple[int, str, int]:
        host["command"] = command
        os.write(fd, host["out"])
        return host["code"], host["err"], len(host["out"])

    monkeypatch.setattr(export_tasks, "Access", Access)
    monkeypatch.setattr(export_tasks, "credentials", lambda *_a, **_k: None)
    monkeypatch.setattr(export_tasks, "stream_command", stream)
    return host


def test_run_export_plain_success_writes_file_0600_checked(
        fake_host: dict[str, Any], tmp_path: Path) -> None:
    fake_host["out"] = archive({"database/villeparisis.sql": b"SQL\n"})
    fake_host["err"] = 'manifest {"site": "villeparisis", "snapshots": {"db": {"id": "x"}}}\n'
    dest = tmp_path / "export.tar"
    lines: list[str] = []
    result = run_export("prod", "villeparisis", str(dest), plain=True,
                        inventory=fake_host["inventory"], emit=lines.append)
    assert dest.read_bytes() == fake_host["out"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert result["checked_against_manifest"] and result["files"] == 1
    assert result["encrypted"] is False and result["snapshots"] == {"db": {"id": "x"}}
    assert any("WARNING: --plain" in line for line in lines)
    assert "backup.export --site villeparisis --from local --plain" in fake_host["command"]
    assert fake_host["command"].startswith("sudo -n ")
    assert not list(tmp_path.glob(".export-*"))


def test_run_export_host_failure_leaves_no_file_and_names_the_host_error(
        fake_host: dict[str, Any], tmp_path: Path) -> None:
    fake_host.update(out=b"age-encryption.org/v1\npartial", code=1,
                     err="export villeparisis: FAILED: dump /srv/x: restic exited 1\n")
    dest = tmp_path / "export.age"
    with pytest.raises(ExportTaskError, match=r"failed \(exit 1\), nothing written.*restic "
                                              "exited 1"):
        run_export("prod", "villeparisis", str(dest), KEY, inventory=fake_host["inventory"],
                   emit=lambda _m: None)
    assert not dest.exists() and not list(tmp_path.glob(".export-*"))


def test_run_export_corrupt_plain_archive_keeps_the_old_file(
        fake_host: dict[str, Any], tmp_path: Path) -> None:
    fake_host["out"] = archive({"database/villeparisis.sql": b"SQL\n"},
                               tamper="database/villeparisis.sql")
    dest = tmp_path / "export.tar"
    dest.write_bytes(b"previous export")
    with pytest.raises(ExportTaskError, match="does not match its manifest"):
        run_export("prod", "villeparisis", str(dest), plain=True, force=True,
                   inventory=fake_host["inventory"], emit=lambda _m: None)
    assert dest.read_bytes() == b"previous export"
    assert not list(tmp_path.glob(".export-*"))
