"""The incident record's receiver (R-INC-4): Alertmanager's webhook payloads (version 4, as
Alertmanager 0.27/0.28 sends them: firing, resolved, grouped), the allow-list that keeps
personal data out, the atomic append, the HTTP endpoint, the rotated files."""
from __future__ import annotations

import gzip
import http.client
import json
import os
import threading
from http.server import HTTPServer
from pathlib import Path

import pytest
import receiver

FIRING = {
    "receiver": "incidents", "status": "firing", "version": "4", "truncatedAlerts": 0,
    "groupKey": '{}:{alertname="SiteDown"}', "externalURL": "http://ops:9093",
    "groupLabels": {"alertname": "SiteDown"},
    "commonLabels": {"alertname": "SiteDown", "severity": "critical"},
    "commonAnnotations": {"summary": "participation does not answer"},
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "SiteDown", "severity": "critical", "site": "participation",
                   "instance": "https://participation.example.org/", "job": "blackbox-https"},
        "annotations": {"summary": "participation does not answer",
                        "runbook": "docs/monitoring.md#sitedown",
                        "description": "contact jane.doe@example.org"},
        "startsAt": "2026-12-04T20:01:02.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://ops:9090/graph?g0.expr=probe_success",
        "fingerprint": "1a2b3c4d5e6f7081"}],
}

RESOLVED_GROUPED = {
    "receiver": "incidents", "status": "resolved", "version": "4", "truncatedAlerts": 0,
    "groupKey": '{}:{alertname="HostDown"}', "externalURL": "http://ops:9093",
    "groupLabels": {"alertname": "HostDown"}, "commonLabels": {"alertname": "HostDown"},
    "commonAnnotations": {},
    "alerts": [
        {"status": "resolved",
         "labels": {"alertname": "HostDown", "severity": "critical", "host": "backup-a",
                    "instance": "10.0.0.5:9100", "job": "node"},
         "annotations": {"summary": "backup-a is down"},
         "startsAt": "2026-12-04T20:00:00Z", "endsAt": "2026-12-04T20:05:30Z",
         "generatorURL": "", "fingerprint": "00aa"},
        {"status": "resolved",
         "labels": {"alertname": "HostDown", "severity": "critical",
                    "instance": "web-villeparisis:9100", "job": "node"},
         "annotations": {}, "startsAt": "2026-12-04T20:00:10Z",
         "endsAt": "2026-12-04T20:05:40Z", "generatorURL": "", "fingerprint": "00bb"}],
}


def test_parse_notification_firing_alert_keeps_what_when_where() -> None:
    [r] = receiver.parse_notification(FIRING, received="2026-12-04T20:01:30Z")
    assert r["kind"] == "alert" and r["status"] == "firing" and r["what"] == "SiteDown"
    assert r["site"] == "participation" and r["severity"] == "critical"
    assert r["started"] == "2026-12-04T20:01:02Z" and r["resolved"] is None
    assert r["time"] == "2026-12-04T20:01:30Z"
    assert r["summary"] == "participation does not answer"
    assert r["runbook"] == "docs/monitoring.md#sitedown"
    assert r["host"] is None  # a probe's URL is the site, not a host


def test_parse_notification_grouped_resolved_one_record_per_alert_with_resolved_time() -> None:
    records = receiver.parse_notification(RESOLVED_GROUPED)
    assert [r["status"] for r in records] == ["resolved", "resolved"]
    assert [r["host"] for r in records] == ["backup-a", "web-villeparisis"]
    assert [r["resolved"] for r in records] == ["2026-12-04T20:05:30Z", "2026-12-04T20:05:40Z"]


def test_parse_notification_unlisted_annotation_and_payload_fields_not_written() -> None:
    [r] = receiver.parse_notification(FIRING)
    text = json.dumps(r)
    assert "description" not in r and "jane.doe" not in text
    assert "groupKey" not in text and "generatorURL" not in text and "graph?" not in text


def test_clean_labels_label_holding_email_is_not_written() -> None:
    payload = json.loads(json.dumps(FIRING))
    payload["alerts"][0]["labels"]["owner"] = "jane.doe@example.org"  # not allow-listed
    payload["alerts"][0]["labels"]["instance"] = "jane.doe@example.org"  # allow-listed key
    [r] = receiver.parse_notification(payload)
    assert "jane.doe" not in json.dumps(r)
    assert "owner" not in r["labels"] and "instance" not in r["labels"]
    assert r["labels"]["site"] == "participation"


def test_scrub_email_in_summary_is_redacted() -> None:
    payload = json.loads(json.dumps(FIRING))
    payload["alerts"][0]["annotations"]["summary"] = "mail from bob@example.com failed"
    [r] = receiver.parse_notification(payload)
    assert r["summary"] == "mail from <redacted> failed"


@pytest.mark.parametrize("mutate, field", [
    (lambda p: p.update(version="3"), "version"),
    (lambda p: p.update(alerts={}), "alerts"),
    (lambda p: p["alerts"][0].update(status="pending"), "alerts[0].status"),
    (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
    (lambda p: p["alerts"][0].update(labels=["x"]), "alerts[0].labels"),
])
def test_parse_notification_bad_payload_error_names_field(mutate, field) -> None:
    payload = json.loads(json.dumps(FIRING))
    mutate(payload)
    with pytest.raises(receiver.BadPayload, match=field.replace("[", r"\[").replace("]", r"\]")):
        receiver.parse_notification(payload)


def test_clean_record_task_record_keeps_allowed_fields_only() -> None:
    r = receiver.clean_record({"kind": "restore", "what": "restore of participation from a",
                               "site": "participation", "result": "ok", "seconds": 9.4,
                               "errors": ["user admin@example.org: denied"],
                               "password": "hunter2"})
    assert r["kind"] == "restore" and r["seconds"] == 9.4 and "password" not in r
    assert r["errors"] == ["user <redacted>: denied"]


@pytest.mark.parametrize("data, field", [({"what": "x"}, "record.kind"),
                                         ({"kind": "restore"}, "record.what"),
                                         ([], "record")])
def test_clean_record_bad_record_error_names_field(data, field) -> None:
    with pytest.raises(receiver.BadPayload, match=field.replace(".", r"\.")):
        receiver.clean_record(data)


def test_append_many_threads_lines_whole_and_parseable(tmp_path: Path) -> None:
    log = tmp_path / "incidents.jsonl"
    big = {"kind": "note", "what": "x" * 3000}

    def worker(n: int) -> None:
        for i in range(50):
            receiver.append(log, {**big, "n": n, "i": i})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = log.read_text().splitlines()
    assert len(lines) == 400
    assert {(json.loads(line)["n"], json.loads(line)["i"]) for line in lines} == {
        (n, i) for n in range(8) for i in range(50)}
    assert oct(log.stat().st_mode & 0o777) == "0o640"


def test_read_all_rotated_files_oldest_first_then_live(tmp_path: Path) -> None:
    log = tmp_path / "incidents.jsonl"
    with gzip.open(tmp_path / "incidents.jsonl.2.gz", "wt") as f:
        f.write('{"what": "oldest"}\n')
    (tmp_path / "incidents.jsonl.1").write_text('{"what": "older"}\n')
    receiver.append(log, {"what": "newest"})
    assert [r["what"] for r in receiver.read_all(log)] == ["oldest", "older", "newest"]


@pytest.fixture()
def server(tmp_path: Path):
    log = tmp_path / "incidents.jsonl"
    handler = type("Bound", (receiver.Handler,), {"log_path": str(log)})
    srv = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1], log
    srv.shutdown()
    srv.server_close()


def _post(port: int, path: str, body: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"{}")


def test_handler_post_firing_then_resolved_appends_two_lines(server) -> None:
    port, log = server
    assert _post(port, "/alertmanager", json.dumps(FIRING).encode()) == (200, {"appended": 1})
    assert _post(port, "/alertmanager", json.dumps(RESOLVED_GROUPED).encode()) == (
        200, {"appended": 2})
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["what"], r["status"]) for r in records] == [
        ("SiteDown", "firing"), ("HostDown", "resolved"), ("HostDown", "resolved")]


def test_handler_bad_json_400_and_nothing_written(server) -> None:
    port, log = server
    status, body = _post(port, "/alertmanager", b"{not json")
    assert status == 400 and "error" in body
    assert not log.exists()


def test_handler_other_path_404(server) -> None:
    port, log = server
    assert _post(port, "/", json.dumps(FIRING).encode())[0] == 404
    assert not log.exists()


def test_main_append_reads_stdin_and_appends_cleaned_record(tmp_path, monkeypatch, capsys):
    import io
    log = tmp_path / "incidents.jsonl"
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(
        {"kind": "release", "what": "release failed", "site": "s", "token": "x"})))
    assert receiver.main(["append", "--log", str(log)]) == 0
    [r] = [json.loads(line) for line in log.read_text().splitlines()]
    assert r["what"] == "release failed" and "token" not in r


def test_serve_non_loopback_address_refused() -> None:
    with pytest.raises(SystemExit, match="loopback"):
        receiver.serve("0.0.0.0:9099", os.devnull)


def test_notify_ready_sends_ready_to_systemds_socket(tmp_path, monkeypatch) -> None:
    import socket

    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert receiver.notify_ready() is True
        assert sock.recv(64) == b"READY=1"


def test_notify_ready_without_systemd_does_nothing(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert receiver.notify_ready() is False
