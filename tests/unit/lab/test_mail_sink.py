"""The lab's mail sink (lab/mail_sink_server.py, issue 13) with Python's own SMTP client on the
loopback: each message is kept whole as one file, dot-stuffing undone; what it cannot take is
refused, never stored. And the lab's monitoring sends its alert emails to it."""
from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from lab import mail_sink
from lab.mail_sink_server import MAX_BYTES, serve
from lab.plan import lab_monitoring
from model.types import Monitoring


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    server = serve("127.0.0.1", 0, tmp_path / "mail")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], tmp_path / "mail"
    finally:
        server.shutdown()
        server.server_close()


def _message(body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "am@lab.invalid", "alerts@lab.invalid", "[FIRING]"
    msg.set_content(body)
    return msg


def test_serve_message_sent_is_kept_whole_in_one_file(sink):
    port, directory = sink
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(_message("SiteDown villeparisis\n.hidden line\n"))
    [kept] = list(directory.glob("*.eml"))
    text = kept.read_text()
    assert "Subject: [FIRING]" in text and "SiteDown villeparisis" in text
    assert "\n.hidden line" in text  # the client's dot-stuffing undone


def test_serve_message_too_big_is_refused_and_not_stored(sink):
    port, directory = sink
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.esmtp_features.pop("size", None)  # the client would refuse it itself otherwise
        with pytest.raises(smtplib.SMTPDataError):
            smtp.send_message(_message("x" * (MAX_BYTES + 10)))
    assert list(directory.glob("*.eml")) == []


def test_lab_monitoring_alert_email_goes_to_the_sink_in_plain_smtp():
    m = lab_monitoring(Monitoring())
    assert m.email is not None
    assert m.email.smarthost == f"{mail_sink.HOST}:{mail_sink.PORT}"
    assert m.email.to == (mail_sink.RECIPIENT,) and m.email.require_tls is False
    assert m.email.username == ""  # no SMTP password file to provide in the lab


def test_files_unit_runs_the_copied_server_on_ops_loopback():
    files = {path: (content, mode) for path, content, mode in mail_sink.files()}
    unit, _ = files[f"/etc/systemd/system/{mail_sink.UNIT}"]
    assert f"ExecStart=/usr/bin/python3 {mail_sink.SCRIPT} 127.0.0.1 {mail_sink.PORT} " \
           f"{mail_sink.MAIL_DIR}" in unit
    assert files[mail_sink.SCRIPT] == (mail_sink.SOURCE.read_text(), 0o755)
