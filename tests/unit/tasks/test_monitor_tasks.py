"""`fab monitor.*` (issue 13): what the status says from Prometheus's API answers, and the SMTP
password never on a command line."""
from __future__ import annotations

import io

import pytest

from roles.monitoring import config as c
from tasks import monitor_tasks as mt

TARGETS = {"activeTargets": [
    {"labels": {"job": "node", "host": "proxy", "instance": "10.20.0.10:9100"},
     "health": "up", "lastError": ""},
    {"labels": {"job": "node", "host": "web-villeparisis", "instance": "10.20.0.100:9100"},
     "health": "down", "lastError": "connection refused"},
    {"labels": {"job": "site", "site": "participation", "check": "https",
                "instance": "https://198.51.100.18/"}, "health": "up", "lastError": ""},
]}
ALERTS = {"alerts": [
    {"labels": {"alertname": "HostDown", "host": "web-villeparisis", "severity": "critical"},
     "annotations": {"summary": "web-villeparisis does not answer"}, "state": "firing",
     "activeAt": "2026-12-04T20:00:00.123Z"},
    {"labels": {"alertname": "SiteDown", "site": "villeparisis", "severity": "critical"},
     "annotations": {}, "state": "pending", "activeAt": "2026-12-04T20:01:00Z"},
]}


def test_targets_down_lists_only_unhealthy_targets():
    down = mt.targets_down(TARGETS)
    assert [(t["job"], t["host"], t["error"]) for t in down] == \
        [("node", "web-villeparisis", "connection refused")]


def test_alerts_firing_skips_pending():
    firing = mt.alerts_firing(ALERTS)
    assert [(a["alert"], a["where"]) for a in firing] == [("HostDown", "web-villeparisis")]


def test_report_healthy_says_all_up_and_no_alert():
    assert mt.report(3, [], []) == "targets: 3/3 up\nalerts firing: 0"


def test_report_problem_names_target_and_alert():
    text = mt.report(3, mt.targets_down(TARGETS), mt.alerts_firing(ALERTS))
    assert "targets: 2/3 up" in text
    assert "DOWN  node" in text and "connection refused" in text
    assert "CRITICAL HostDown" in text and "since 2026-12-04T20:00:00" in text


def test_api_argv_queries_loopback_only():
    argv = mt.api_argv(c.PROMETHEUS, "/api/v1/alerts")
    assert argv[-1] == "http://127.0.0.1:9090/api/v1/alerts"


def test_smtp_password_argv_holds_no_secret_and_keeps_file_private():
    argv = mt.smtp_password_argv()
    script = argv[-1]
    assert "umask 077" in script and "chmod 0640" in script and "chgrp prometheus" in script
    assert f"mv -f {c.SMTP_PASSWORD_FILE}.new {c.SMTP_PASSWORD_FILE}" in script


def test_read_password_from_piped_stdin_strips_newline():
    assert mt.read_password(io.StringIO("s3cret pass\n")) == b"s3cret pass"


def test_read_password_empty_refused():
    with pytest.raises(mt.MonitorError, match="empty password"):
        mt.read_password(io.StringIO("\n"))


class _Chan:
    def __init__(self):
        self.command, self.sent = "", b""

    def settimeout(self, _t):
        pass

    def exec_command(self, command):
        self.command = command

    def sendall(self, data):
        self.sent += data

    def shutdown_write(self):
        pass

    def makefile(self, _mode):
        return io.BytesIO(b"")

    def makefile_stderr(self, _mode):
        return io.BytesIO(b"")

    def recv_exit_status(self):
        return 0

    def close(self):
        pass


class _Conn:
    def __init__(self, chan):
        self.chan = chan
        transport = type("T", (), {"open_session": lambda _s, timeout: chan})()
        self.client = type("C", (), {"get_transport": lambda _s: transport})()

    def open(self):
        pass


def test_run_on_sends_secret_on_stdin_never_in_command():
    chan = _Chan()
    mt.run_on(_Conn(chan), mt.smtp_password_argv(), stdin=b"s3cret", sudo=True)
    assert chan.sent == b"s3cret"
    assert "s3cret" not in chan.command
    assert chan.command.startswith("sudo -n sh -c ")
