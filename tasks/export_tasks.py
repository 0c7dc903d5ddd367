"""`fab export --site X --to FILE [--recipient AGE_PUBLIC_KEY | --plain] [--at TIME |
--snapshot ID] [--from local|a|b] [--force]` (issue 16, R-DATA-1, R-GDPR-1, R-GDPR-2).

The site's data as ONE archive for the client: its database dump, its public and private
files (decrypted) and a manifest with the sha256 of each member (docs/export.md). The work is
the web host's (backup/export.py, run as root over the project's SSH like backup.restore):
by default it takes a fresh backup and exports that; --at/--snapshot export a chosen backup.
The host encrypts the archive with `age` to the recipient before it leaves the host, so only
ciphertext crosses the network and lands here. This side:
  1. refuses bad input before connecting, naming the field: an unknown site, a recipient that
     is no age public key (a secret key is never echoed), both or neither of --recipient and
     --plain, --at with --snapshot, an existing FILE without --force, a missing directory;
  2. streams the host's stdout (bytes, over an SSH channel of engine.access) into a 0600 file
     inside a fresh 0700 directory beside FILE, never FILE itself;
  3. only when the host exited 0: with --plain (or --check-with an age identity, the tests'
     way), reads the archive back and checks every member against the manifest; then renames
     it to FILE (0600). Any failure removes the partial file and its directory, and names every
     error (the host's own words included); FILE is then untouched.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from backup.export import ExportError, check_recipient
from backup.export_verify import verify_archive
from engine.access import Access, AccessError, credentials
from engine.inventory import InventoryError, load
from roles.backup.layout import PYTHON, RUNNER_DIR

CHUNK = 1 << 16
IDLE_TIMEOUT = 900  # seconds without a byte from the host (a fresh backup of a big site)


class ExportTaskError(RuntimeError):
    pass


def host_argv(site: str, recipient: str, plain: bool, at: str, snapshot: str,
              source: str) -> list[str]:
    """The on-host command line (pure); refuses contradictory options naming them."""
    if at and snapshot:
        raise ExportTaskError("--at and --snapshot choose the backup each: give one")
    if plain and recipient:
        raise ExportTaskError("--recipient and --plain: give one (--plain means unencrypted)")
    if not plain and not recipient:
        raise ExportTaskError("--recipient: the client's age public key (age1...) is required "
                              "(or --plain for an unencrypted archive)")
    if source not in ("local", "a", "b"):
        raise ExportTaskError(f"--from {source!r}: local, a or b")
    if source != "local" and not (at or snapshot):
        raise ExportTaskError(f"--from {source}: give --at or --snapshot (a fresh backup is "
                              "taken into the local repository)")
    argv = ["env", f"PYTHONPATH={RUNNER_DIR}", PYTHON, "-m", "backup.export", "--site", site,
            "--from", source]
    if at:
        argv += ["--at", at]
    for one in snapshot.split(",") if snapshot else ():
        argv += ["--snapshot", one.strip()]
    if plain:
        argv.append("--plain")
    else:
        try:
            argv += ["--recipient", check_recipient(recipient)]
        except ExportError as exc:
            raise ExportTaskError(str(exc)) from None
    return argv


def check_destination(to: str, force: bool) -> Path:
    """FILE as an absolute path, or ExportTaskError naming --to."""
    if not to:
        raise ExportTaskError("--to: the file to write the archive to is required")
    dest = Path(to).expanduser().absolute()
    if not dest.parent.is_dir():
        raise ExportTaskError(f"--to {to}: directory {dest.parent} does not exist")
    if dest.is_dir():
        raise ExportTaskError(f"--to {to}: is a directory; give a file name")
    if (dest.exists() or dest.is_symlink()) and not force:
        raise ExportTaskError(f"--to {to}: exists; give --force to replace it")
    return dest


def stream_command(conn: Any, command: str, out_fd: int, timeout: float = IDLE_TIMEOUT
                   ) -> tuple[int, str, int]:
    """Run `command` on the host through an SSH channel of `conn` (a Fabric Connection),
    writing its stdout bytes to `out_fd` as they come; (exit status, stderr, bytes)."""
    conn.open()
    channel = conn.client.get_transport().open_session(timeout=30)
    try:
        channel.settimeout(timeout)
        channel.exec_command(command)
        channel.shutdown_write()  # no stdin: nothing here is ever sent to the host
        size = 0
        while data := channel.recv(CHUNK):
            view = memoryview(data)
            while view:
                view = view[os.write(out_fd, view):]
            size += len(data)
        stderr = channel.makefile_stderr("rb").read().decode(errors="replace")
        return channel.recv_exit_status(), stderr, size
    finally:
        channel.close()


def check_file(path: Path, identity: str = "") -> dict[str, Any]:
    """The fetched archive checked against its manifest: read as is (--plain) or decrypted by
    `age` into a pipe with `identity` (never a decrypted copy on disk)."""
    try:
        if not identity:
            with path.open("rb") as source:
                return verify_archive(source)
        with tempfile.TemporaryFile() as err:
            age = subprocess.Popen(["age", "--decrypt", "--identity", identity, str(path)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=err)
            assert age.stdout is not None
            try:
                manifest = verify_archive(age.stdout)
            finally:
                age.stdout.close()
                code = age.wait()
            if code != 0:
                err.seek(0)
                raise ExportError(f"age --decrypt exited {code}: "
                                  f"{err.read().decode(errors='replace').strip()[-300:]}")
            return manifest
    except ExportError as exc:
        raise ExportTaskError(f"the fetched archive does not match its manifest: {exc}") from None
    except (OSError, ValueError) as exc:
        raise ExportTaskError(f"the fetched archive is unreadable: {exc}") from None


def host_summary(stderr: str) -> dict[str, Any]:
    """The `manifest {...}` line the host prints last (snapshots and time), if any."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("manifest "):
            with contextlib.suppress(ValueError):
                return json.loads(line[len("manifest "):])
    return {}


def run_export(env: str, site: str, to: str, recipient: str = "", plain: bool = False,
               at: str = "", snapshot: str = "", source: str = "local", force: bool = False,
               inventory: str = "", identity: str = "", check_with: str = "",
               emit: Callable[[str], None] = print) -> dict[str, Any]:
    t0 = time.monotonic()
    argv = host_argv(site, recipient, plain, at, snapshot, source)
    dest = check_destination(to, force)
    if check_with and not Path(check_with).is_file():
        raise ExportTaskError(f"--check-with {check_with}: no such age identity file")
    inv = load(env, inventory or None)
    try:
        s = inv.site(site)
    except InventoryError as exc:
        raise ExportTaskError(f"--site {site!r}: {exc}") from None
    if plain:
        emit(f"export {site}: WARNING: --plain: {dest} will hold the site's database and "
             "private files UNENCRYPTED; keep it off shared disks and delete it once handed over")
    creds = credentials(env, identity, inv=inv)
    work = Path(tempfile.mkdtemp(prefix=f".export-{site}-", dir=dest.parent))  # 0700
    part = work / "archive"
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        access = Access(inv, creds)
        try:
            conn = access.connection(inv.host(s.host))
            code, stderr, size = stream_command(conn, "sudo -n " + shlex.join(argv), fd)
        finally:
            os.close(fd)
            access.close()
        for line in stderr.splitlines():
            if line.strip() and not line.startswith("manifest "):
                emit(f"  {s.host}: {line}")
        if code != 0:
            raise ExportTaskError(f"export on {s.host} failed (exit {code}), nothing written "
                                  f"to {dest}: {stderr.strip()[-1500:] or '(no message)'}")
        if size == 0:
            raise ExportTaskError(f"export on {s.host} sent nothing; nothing written to {dest}")
        manifest: dict[str, Any] | None = None
        if plain or check_with:
            manifest = check_file(part, "" if plain else check_with)
        os.chmod(part, 0o600)
        os.replace(part, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = host_summary(stderr)
    result = {
        "site": site, "host": s.host, "file": str(dest), "bytes": size,
        "encrypted": not plain, "recipient": None if plain else argv[-1],
        "snapshots": summary.get("snapshots"), "created": summary.get("created"),
        "fresh_backup": not (at or snapshot),
        "checked_against_manifest": manifest is not None,
        "files": None if manifest is None else sum(
            1 for m in manifest["members"] if m["type"] == "file"),
        "seconds": round(time.monotonic() - t0, 1),
    }
    emit(f"export {site}: {dest} ({size} bytes, "
         f"{'age-encrypted to ' + argv[-1] if not plain else 'NOT encrypted'}) in "
         f"{result['seconds']} s"
         + (f"; {result['files']} files match the manifest" if manifest else ""))
    return result


@task(help={"site": "site name (required)",
            "to": "file to write the archive to (created 0600; refused if it exists)",
            "recipient": "the client's age public key (age1..., from `age-keygen -y`)",
            "plain": "no encryption (a warning is printed): the file holds personal data",
            "at": "YYYY-MM-DD (newest backup of that day or before) or an ISO time; default: "
                  "a fresh backup now",
            "snapshot": "the backup whose database or files snapshot id starts with this "
                        "(8+ hex digits; two ids comma-separated for an exact pair)",
            "from": "repository to read a chosen backup from: local (default), a or b",
            "force": "replace FILE if it exists",
            "check-with": "an age identity file: decrypt the fetched archive in a pipe and "
                          "check it against its manifest (tests, or the client's own check)",
            "env": "lab | prod | preprod (default lab)", "inventory": "inventory JSON file",
            "identity": "your SSH key (with KEY-cert.pub)"},
      name="export")
def export(c, site="", to="", recipient="", plain=False, at="", snapshot="", from_="local",
           force=False, check_with="", env="lab", inventory="", identity=""):
    """Export a site's database and files as one archive, encrypted with age (R-DATA-1)."""
    if not site:
        raise Exit("export: --site is required", code=2)
    try:
        result = run_export(env, site, to, recipient, plain, at, snapshot, from_, force,
                            inventory, identity, check_with)
    except ExportTaskError as exc:
        raise Exit(f"export: {exc}", code=1) from exc
    except (InventoryError, AccessError) as exc:
        raise Exit(f"export: {exc}", code=1) from exc
    print(json.dumps(result, indent=2, sort_keys=True))
