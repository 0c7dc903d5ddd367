"""tasks/incident_record.py (R-INC-4, issue 13): the admin side appends a record on ops through
its own SSH access, the record on stdin (never on the command line); ops missing or
unreachable is said and never fails the task; the restore's and the release's records."""
from __future__ import annotations

import json
import shlex
from types import SimpleNamespace
from typing import Any

from roles.monitoring import incidents
from tasks import incident_record as ir

OPS = SimpleNamespace(name="ops", role="ops")
WEB = SimpleNamespace(name="web-s", role="web")


class FakeChannel:
    def __init__(self, code: int, out: bytes = b"", err: bytes = b"") -> None:
        self.code, self.out, self.err = code, out, err
        self.command = ""
        self.stdin = b""
        self.write_closed = False

    def settimeout(self, _t: float) -> None:
        pass

    def exec_command(self, command: str) -> None:
        self.command = command

    def sendall(self, data: bytes) -> None:
        self.stdin += data

    def shutdown_write(self) -> None:
        self.write_closed = True

    def makefile(self, _mode: str) -> Any:
        return SimpleNamespace(read=lambda: self.out)

    def makefile_stderr(self, _mode: str) -> Any:
        return SimpleNamespace(read=lambda: self.err)

    def recv_exit_status(self) -> int:
        return self.code

    def close(self) -> None:
        pass


class FakeConn:
    def __init__(self, chan: FakeChannel) -> None:
        transport = SimpleNamespace(open_session=lambda timeout: chan)
        self.client = SimpleNamespace(get_transport=lambda: transport)

    def open(self) -> None:
        pass


class FakeAccess:
    def __init__(self, conn: Any = None, error: Exception | None = None) -> None:
        self.conn, self.error, self.asked = conn, error, []

    def connection(self, host: Any) -> Any:
        self.asked.append(host.name)
        if self.error:
            raise self.error
        return self.conn


RECORD = {"kind": "restore", "what": "restore of s from a", "site": "s", "result": "ok"}


def test_record_incident_ops_missing_says_so_returns_false() -> None:
    said: list[str] = []
    access = FakeAccess()
    assert ir.record_incident(SimpleNamespace(hosts=[WEB]), access, RECORD, said.append) is False
    assert "no ops host" in said[0] and '"restore of s from a"' in said[0]
    assert access.asked == []


def test_record_incident_ops_unreachable_says_so_returns_false() -> None:
    said: list[str] = []
    access = FakeAccess(error=OSError("No route to host"))
    assert ir.record_incident(SimpleNamespace(hosts=[WEB, OPS]), access, RECORD,
                              said.append) is False
    assert "ops unreachable (No route to host)" in said[0]


def test_record_incident_record_on_stdin_not_in_argv_and_appended() -> None:
    chan = FakeChannel(0)
    said: list[str] = []
    assert ir.record_incident(SimpleNamespace(hosts=[OPS]), FakeAccess(FakeConn(chan)), RECORD,
                              said.append) is True
    assert chan.command == "sudo -n " + shlex.join(incidents.append_argv())
    assert json.loads(chan.stdin) == RECORD and chan.write_closed
    assert "restore of s" not in chan.command
    assert said == ["incident record: appended on ops"]


def test_record_incident_append_refused_says_why_returns_false() -> None:
    chan = FakeChannel(1, err=b"hosting-incidents append: record.kind: 'x' is not one of")
    said: list[str] = []
    assert ir.record_incident(SimpleNamespace(hosts=[OPS]), FakeAccess(FakeConn(chan)), RECORD,
                              said.append) is False
    assert "exit 1" in said[0] and "record.kind" in said[0]


def test_read_incidents_parses_show_output() -> None:
    chan = FakeChannel(0, out=b'{"what": "a"}\n{"what": "b"}\n')
    records = ir.read_incidents(SimpleNamespace(hosts=[OPS]), FakeAccess(FakeConn(chan)))
    assert [r["what"] for r in records] == ["a", "b"]
    assert chan.command == "sudo -n " + shlex.join(incidents.show_argv())


def test_restore_record_failed_restore_names_error_and_no_resolved_time() -> None:
    r = ir.restore_record(None, "s", "a", "", "2026-12-04T20:00:00Z", "A unreachable")
    assert (r["kind"], r["status"], r["result"], r["resolved"]) == (
        "restore", "failed", "failed", None)
    assert r["errors"] == ["A unreachable"] and r["what"] == "restore of s from a (newest)"


def test_restore_record_done_restore_resolved_with_rto_and_way_back() -> None:
    result = {"ok": True, "target": "web-s", "rto_seconds": 9.4, "errors": [],
              "restore": {"snapshot_time": "2026-12-04T02:15:00Z", "outcome": "restored"},
              "safety": {"go_back": "fab restore --site s --from local --snapshot abcd1234"}}
    r = ir.restore_record(result, "s", "a", "2026-12-04", "2026-12-04T20:00:00Z")
    assert r["status"] == "resolved" and r["resolved"] and r["seconds"] == 9.4
    assert r["host"] == "web-s" and r["outcome"] == "restored"
    assert r["go_back"].endswith("--snapshot abcd1234")


def test_release_record_failed_release_keeps_host_record_facts() -> None:
    r = ir.release_record("s", "web-s", "release", "health check failed",
                          {"result": "rolled back", "release": "r2", "previous": "r1",
                           "time": "2026-12-04T20:00:00Z"})
    assert (r["kind"], r["status"], r["release"], r["previous"], r["outcome"]) == (
        "release", "failed", "r2", "r1", "rolled back")


def test_records_pass_the_receivers_allow_list_unchanged() -> None:
    import sys
    sys.path.insert(0, str(incidents.SOURCE))
    import receiver

    r = ir.restore_record(None, "s", "a", "", "2026-12-04T20:00:00Z", "boom")
    cleaned = receiver.clean_record(r)
    assert {k: v for k, v in r.items() if v is not None} == {
        k: v for k, v in cleaned.items() if k not in ("schema", "time")}
