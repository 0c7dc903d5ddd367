"""engine/channel.py: one command over a verified connection, stdin sent then closed, the
argv quoted for the remote shell, sudo only when asked."""
from __future__ import annotations

from engine.channel import run_on


class FakeChannel:
    def __init__(self) -> None:
        self.command, self.sent, self.closed_write, self.closed = "", b"", False, False

    def settimeout(self, _t) -> None:
        pass

    def exec_command(self, command: str) -> None:
        self.command = command

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def shutdown_write(self) -> None:
        self.closed_write = True

    def makefile(self, _mode):
        import io
        return io.BytesIO(b"out")

    def makefile_stderr(self, _mode):
        import io
        return io.BytesIO(b"err")

    def recv_exit_status(self) -> int:
        return 3

    def close(self) -> None:
        self.closed = True


class FakeConn:
    def __init__(self) -> None:
        self.chan = FakeChannel()
        outer = self

        class Transport:
            def open_session(self, timeout):
                return outer.chan

        class Client:
            def get_transport(self):
                return Transport()

        self.client = Client()

    def open(self) -> None:
        pass


def test_run_on_sudo_quotes_argv_sends_stdin_then_eof() -> None:
    conn = FakeConn()
    code, out, err = run_on(conn, ["tee", "-a", "/var/log/a b"], b"secret\n", sudo=True)
    assert (code, out, err) == (3, b"out", b"err")
    assert conn.chan.command == "sudo -n tee -a '/var/log/a b'"
    assert conn.chan.sent == b"secret\n" and conn.chan.closed_write and conn.chan.closed


def test_run_on_without_sudo_plain_command() -> None:
    conn = FakeConn()
    run_on(conn, ["curl", "-s", "http://127.0.0.1:9090/api/v1/alerts"])
    assert conn.chan.command == "curl -s http://127.0.0.1:9090/api/v1/alerts"
