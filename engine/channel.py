"""One command on a host over an already verified SSH connection (a Fabric Connection from
engine.access), for the admin's tasks that talk to one host's own tools: Prometheus and
Alertmanager on ops (tasks/monitor_tasks.py), the incident record (tasks/incident_record.py),
certbot's side on ops (tasks/acme_tasks.py).

`stdin` is sent, then closed (EOF): data such as a record or a password goes there, never into
`argv`, which is what the host's process list and logs show.
"""
from __future__ import annotations

import shlex
from typing import Any

TIMEOUT = 30


def run_on(conn: Any, argv: list[str], stdin: bytes = b"", sudo: bool = False,
           timeout: int = TIMEOUT) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of `argv` on the connection's host."""
    conn.open()
    chan = conn.client.get_transport().open_session(timeout=30)
    try:
        chan.settimeout(timeout)
        chan.exec_command(("sudo -n " if sudo else "") + shlex.join(argv))
        if stdin:
            chan.sendall(stdin)
        chan.shutdown_write()
        out = chan.makefile("rb").read()
        err = chan.makefile_stderr("rb").read()
        return chan.recv_exit_status(), out, err
    finally:
        chan.close()


def upload(conn: Any, local: str, remote: str) -> None:
    """`local` to `remote` over an SFTP session that is closed at once (Fabric's `put` keeps
    its SFTP session open for the connection's life): sshd allows 2 sessions per connection
    (MaxSessions, docs/hardening.md), and the commands that follow need them."""
    conn.open()
    with conn.client.open_sftp() as sftp:
        sftp.put(local, remote)
