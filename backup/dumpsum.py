"""Run the database dump for `restic backup --stdin-from-command`, recording its sha256 in it.

    python3 -I -S /usr/local/lib/hosting/backup-runner/backup/dumpsum.py -- DUMP ARGS...

restic starts this program instead of the dump itself: it starts DUMP, passes its output on
unchanged (to restic, on stdout) and hashes it on the way. When DUMP exits 0, it appends one
last line, `-- dump-sha256 <hex>` (trailer_line: an SQL comment, which the database client
skips on load) recording the sha256 of everything before it, and exits 0; otherwise it
writes no trailer and exits with DUMP's status, so restic fails the backup and keeps no
snapshot, exactly as with the dump alone. The restore hashes the body of the dump it streams
into the database client and compares it with the trailer (copy_hashing_body): no second
dump needed to prove the load was whole. The record travels inside the dump's own snapshot,
so the runner needs nothing from the dump before it starts the files backup: both run at
once (backup.run). Older backups recorded the sha256 as a tag of their files snapshot
(backup.records), which the restore still reads.

The SUMFILE argument of earlier versions (a side file with the sha256) is gone: nothing reads
it any more (the runner and the restore's safety snapshot use the trailer).

Run by path, not as `-m backup.dumpsum`: restic's environment has no PYTHONPATH (backup.restic
gives it a minimal one). Standard library only, nothing imported from the backup package.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys

PIPE_SIZE = 1 << 20  # fewer, larger reads and writes than the default 64 KiB pipe


def enlarge_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (OSError, AttributeError):
        pass  # not a pipe, or over /proc/sys/fs/pipe-max-size: the default size works too


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def copy_hashing(in_fd: int, out_fd: int) -> tuple[str, int]:
    """Copy `in_fd` to `out_fd` until EOF: (sha256, bytes) of what was copied.

    Each chunk is written before it is hashed, so the reader works meanwhile. OSError (a
    reader gone: BrokenPipeError) propagates."""
    digest, size = hashlib.sha256(), 0
    while chunk := os.read(in_fd, PIPE_SIZE):
        _write_all(out_fd, memoryview(chunk))
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


TRAILER_PREFIX = b"-- dump-sha256 "
TRAILER_LEN = len(TRAILER_PREFIX) + 64 + 1  # prefix, 64 hex digits, newline


def trailer_line(sha256: str) -> bytes:
    """The last line of a recorded dump: an SQL comment, so the client skips it on load."""
    return TRAILER_PREFIX + sha256.encode() + b"\n"


def parse_trailer(tail: bytes) -> str | None:
    """The sha256 a dump's last TRAILER_LEN bytes record, None when they are no trailer."""
    if len(tail) != TRAILER_LEN or not tail.startswith(TRAILER_PREFIX) or tail[-1:] != b"\n":
        return None
    hexdigits = tail[len(TRAILER_PREFIX):-1].decode("ascii", "replace")
    if len(hexdigits) != 64 or any(c not in "0123456789abcdef" for c in hexdigits):
        return None
    return hexdigits


def copy_hashing_body(in_fd: int, out_fd: int) -> tuple[str, int, str | None]:
    """Copy `in_fd` to `out_fd` until EOF, all of it: (sha256 of the body, bytes copied,
    the sha256 its trailer records or None).

    The body is everything before a final trailer line (`-- dump-sha256 <hex>`); a stream
    without one is all body. The last TRAILER_LEN bytes are held back from the hash until EOF
    says whether they are the trailer, so a dump is read once and never held in memory."""
    digest, size, held = hashlib.sha256(), 0, b""
    while chunk := os.read(in_fd, PIPE_SIZE):
        _write_all(out_fd, memoryview(chunk))
        size += len(chunk)
        data = held + chunk
        if len(data) > TRAILER_LEN:
            digest.update(data[:-TRAILER_LEN])
            held = data[-TRAILER_LEN:]
        else:
            held = data
    recorded = parse_trailer(held)
    if recorded is None:
        digest.update(held)
    return digest.hexdigest(), size, recorded


def pass_through(command: list[str], out_fd: int = 1) -> tuple[int, str, int]:
    """Run `command`, copy its stdout to `out_fd` and hash it; when it exits 0, end the copy
    with trailer_line(sha256 of the body): (exit status, body sha256, body bytes).

    The body is what the dump wrote, plus a newline if its last line had none (so the trailer
    is a line of its own, and the body's recorded sha256 covers that newline too). A dump that
    fails gets no trailer: restic fails the backup anyway. A status killed by a signal is
    returned as 128 + the signal number (as a shell does)."""
    read_fd, write_fd = os.pipe()
    enlarge_pipe(write_fd)
    enlarge_pipe(out_fd)
    try:
        dump = subprocess.Popen(command, stdout=write_fd)
    finally:
        os.close(write_fd)
    try:
        digest, size, last = hashlib.sha256(), 0, b"\n"
        while chunk := os.read(read_fd, PIPE_SIZE):
            _write_all(out_fd, memoryview(chunk))
            digest.update(chunk)
            size += len(chunk)
            last = chunk[-1:]
    except OSError:
        # restic stopped reading (it failed or was stopped): the dump must not go on alone.
        dump.kill()
        dump.wait()
        raise
    finally:
        os.close(read_fd)
    status = dump.wait()
    if status != 0:
        return (128 - status if status < 0 else status), digest.hexdigest(), size
    if last != b"\n":
        _write_all(out_fd, memoryview(b"\n"))
        digest.update(b"\n")
        size += 1
    sha256 = digest.hexdigest()
    _write_all(out_fd, memoryview(trailer_line(sha256)))
    return 0, sha256, size


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--":
        print("usage: dumpsum.py -- DUMP ARGS...", file=sys.stderr)
        return 2
    command = argv[1:]
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # a closed stdout ends us like the dump
    try:
        status, _sha256, _size = pass_through(command)
    except FileNotFoundError as error:
        print(f"dumpsum: {command[0]}: {error.strerror}", file=sys.stderr)
        return 127
    except OSError as error:
        print(f"dumpsum: {command[0]}: {error}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
