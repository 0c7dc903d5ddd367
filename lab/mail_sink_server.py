"""The lab's stand-in for the outside world's mail server (issue 13): a minimal SMTP server,
stdlib only, that runs on the lab's ops host and keeps every message it is given as one file.

    python3 mail_sink_server.py HOST PORT DIRECTORY

Alertmanager's email receiver sends to it in the lab (lab hosts have no route out), so the
email path is exercised for real: Alertmanager's own SMTP client, its templates, the headers.
It speaks just enough of RFC 5321 for a client that needs neither TLS nor authentication
(EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT); it relays nothing.
"""
from __future__ import annotations

import os
import socketserver
import sys
import time
from pathlib import Path

MAX_BYTES = 1 << 20  # a notification is a few kB; anything bigger is refused, never stored


class Session(socketserver.StreamRequestHandler):
    timeout = 30
    directory = Path(".")

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def handle(self) -> None:
        self.reply("220 lab-mail-sink ESMTP")
        rcpt: list[str] = []
        while True:
            raw = self.rfile.readline(4096)
            if not raw:
                return
            verb = raw.decode("ascii", "replace").strip().split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-lab-mail-sink")
                self.reply(f"250 SIZE {MAX_BYTES}")
            elif verb == "HELO" or verb == "NOOP":
                self.reply("250 ok")
            elif verb == "MAIL" or verb == "RSET":
                rcpt = []
                self.reply("250 ok")
            elif verb == "RCPT":
                rcpt.append(raw.decode("ascii", "replace").strip())
                self.reply("250 ok")
            elif verb == "DATA":
                if not rcpt:
                    self.reply("503 no recipient")
                    continue
                self.reply("354 end with <CRLF>.<CRLF>")
                body = self.read_data()
                if body is None:
                    self.reply("552 message too big")
                else:
                    self.store(body)
                    self.reply("250 stored")
                rcpt = []
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")

    def read_data(self) -> bytes | None:
        lines: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(MAX_BYTES)
            if not line or line in (b".\r\n", b".\n"):
                break
            size += len(line)
            if size <= MAX_BYTES:  # past it: read to the end (the session goes on), keep none
                lines.append(line[1:] if line.startswith(b"..") else line)  # dot-unstuffing
        return b"".join(lines) if size <= MAX_BYTES else None

    def store(self, body: bytes) -> None:
        name = f"{time.time_ns()}-{os.getpid()}.eml"
        tmp = self.directory / f".{name}"
        tmp.write_bytes(body)
        tmp.rename(self.directory / name)  # readers never see half a message


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(host: str, port: int, directory: Path) -> Server:
    directory.mkdir(parents=True, exist_ok=True)
    handler = type("BoundSession", (Session,), {"directory": directory})
    return Server((host, port), handler)


if __name__ == "__main__":
    host, port, directory = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    serve(host, port, directory).serve_forever()
