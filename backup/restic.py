"""restic command lines and their execution, for the backup runner (stdlib only, runs on hosts).

Rules every command here follows, and the unit tests assert:
  * the repository password comes from a file (`--password-file`, `--from-password-file`):
    never a value in argv (world-readable in /proc/PID/cmdline) and never RESTIC_PASSWORD in
    the environment (readable by whoever can read /proc/PID/environ; inherited by children
    such as the database dump) (R-BKP-7, issue 6);
  * restic gets a minimal environment: TZ=UTC, so `--time` is unambiguous across DST changes,
    and no variable of the caller leaks into it (a stray RESTIC_REPOSITORY, say);
  * off-site repositories are reached only through SSH with a certificate: restic's rclone
    backend runs `ssh -F <config> <alias>`; the storage server's sshd forces the command
    `rclone serve restic --stdio --append-only <repo>` for that principal (R-BKP-7), so the web
    host can add snapshots but never delete or rewrite them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# restic's exit codes (restic >= 0.17) that the runner tells apart.
EXIT_INCOMPLETE = 3  # backup: snapshot written, but some source files could not be read
EXIT_NO_REPO = 10  # the repository does not exist
EXIT_LOCKED = 11  # could not lock the repository
EXIT_BAD_PASSWORD = 12

STDERR_TAIL = 3000


class ResticError(RuntimeError):
    """A restic command failed; the message names the repository, the step and restic's words."""

    def __init__(self, what: str, returncode: int, stderr: str) -> None:
        self.what = what
        self.returncode = returncode
        self.stderr = stderr
        detail = _last_lines(stderr) or "(no message)"
        super().__init__(f"{what}: restic exited {returncode}: {detail}")


def _last_lines(text: str, count: int = 6) -> str:
    """restic's last words, its --json error messages turned back into plain text."""
    lines = []
    for raw in text.strip().splitlines():
        line = raw.strip()
        if line.startswith("{"):
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if isinstance(message, dict):
                error = message.get("error")
                text_ = message.get("message") or (error or {}).get("message") or ""
                line = str(text_).strip()
        if line and line not in lines:
            lines.append(line)
    return " | ".join(lines[-count:])[-STDERR_TAIL:]


@dataclass(frozen=True)
class Repo:
    """One restic repository of a site: the local one, or A/B through SSH.

    ssh_alias: a Host of `ssh_config` (the storage server, with the site's certificate);
    None for a local path. The location restic sees is then `rclone:<site>`: restic appends
    it to the ssh arguments, where the forced command ignores it (it only reaches the storage
    server's log as SSH_ORIGINAL_COMMAND).
    """

    tier: str
    location: str
    password_file: str
    ssh_alias: str | None = None
    ssh_config: str | None = None
    ssh_program: str = "ssh"

    @property
    def remote(self) -> bool:
        return self.ssh_alias is not None

    def rclone_options(self) -> list[str]:
        """`--option rclone.*` reaching this repository over SSH (none for a local path)."""
        if self.ssh_alias is None:
            return []
        ssh_args = ([] if self.ssh_config is None else ["-F", self.ssh_config]) + [self.ssh_alias]
        return [
            "--option",
            f"rclone.program={self.ssh_program}",
            "--option",
            f"rclone.args={shlex.join(ssh_args)}",
            # How long restic waits for the storage side to answer before giving up.
            "--option",
            "rclone.timeout=2m",
        ]

    def options(self) -> list[str]:
        """Global restic arguments that select and open this repository."""
        return [
            "--repo",
            self.location,
            "--password-file",
            self.password_file,
            *self.rclone_options(),
        ]

    def from_options(self) -> list[str]:
        """The same repository as the source of `restic copy` / `init --from-repo`.

        Its `--option rclone.*` (if remote) must be among the global options too: restic's
        backend options apply to both repositories, so source and destination must never
        both be remote (the runner copies only from the local repository)."""
        return ["--from-repo", self.location, "--from-password-file", self.password_file]


@dataclass(frozen=True)
class Restic:
    """How to run restic on this host: the binary, its cache, the lock wait."""

    binary: str = "restic"
    cache_dir: str | None = None
    retry_lock: str = "10m"  # a storage-side prune holds an exclusive lock for a while
    extra_env: Mapping[str, str] = field(default_factory=dict)

    # -- argv builders (pure; the tests check them) ------------------------------------------

    def _base(self, repo: Repo) -> list[str]:
        args = [self.binary, *repo.options()]
        args += ["--cache-dir", self.cache_dir] if self.cache_dir else ["--no-cache"]
        return args

    def snapshots_argv(self, repo: Repo) -> list[str]:
        # --no-lock: a listing must not wait for (or block) a prune on the storage server.
        return [*self._base(repo), "--no-lock", "snapshots", "--json"]

    def init_argv(self, repo: Repo, copy_from: Repo | None = None) -> list[str]:
        args = self._base(repo)
        if copy_from is None:
            return [*args, "init"]
        if copy_from.remote and repo.remote:
            raise ValueError("cannot init a remote repository from another remote one")
        # `restic copy` deduplicates only between repositories that chunk alike: every
        # repository of a site shares the chunker parameters of the first one.
        return [
            *args,
            *copy_from.rclone_options(),
            "init",
            *copy_from.from_options(),
            "--copy-chunker-params",
        ]

    def cat_config_argv(self, repo: Repo) -> list[str]:
        return self.cat_argv(repo, "config")

    def key_argv(self, repo: Repo, *args: str) -> list[str]:
        """`restic key add|remove|list ...` (key add/remove lock the repository)."""
        lock = ["--no-lock"] if args[:1] == ("list",) else ["--retry-lock", self.retry_lock]
        return [*self._base(repo), *lock, "key", *args]

    def cat_argv(self, repo: Repo, *what: str) -> list[str]:
        """`restic cat config`, `restic cat lock ID`...: reads only, takes no lock."""
        return [*self._base(repo), "--no-lock", "cat", *what]

    def _backup_base(self, repo: Repo, tags: Iterable[str], host: str,
                     when: datetime) -> list[str]:
        """What every `restic backup` of a night shares: host, tags, and the decided time."""
        return [*self._base(repo), "--retry-lock", self.retry_lock, "backup", "--json",
                "--host", host, *_tag_args(tags), "--time", restic_time_arg(when)]

    def backup_command_argv(
        self,
        repo: Repo,
        command: Sequence[str],
        filename: str,
        tags: Iterable[str],
        host: str,
        when: datetime,
    ) -> list[str]:
        """`restic backup --stdin-from-command`: restic runs `command` itself and fails (no
        snapshot) when it exits non-zero, unlike a shell pipe that would save a truncated dump."""
        return [
            *self._backup_base(repo, tags, host, when),
            "--stdin-filename",
            filename,
            "--stdin-from-command",
            "--",
            *command,
        ]

    def backup_paths_argv(
        self,
        repo: Repo,
        paths: Sequence[str],
        excludes: Sequence[str],
        tags: Iterable[str],
        host: str,
        when: datetime,
    ) -> list[str]:
        args = [
            *self._backup_base(repo, tags, host, when),
            # Caches marked with CACHEDIR.TAG hold nothing worth restoring.
            "--exclude-caches",
        ]
        for pattern in excludes:
            args += ["--exclude", pattern]
        return [*args, "--", *paths]

    def copy_argv(self, source: Repo, destination: Repo, ids: Sequence[str]) -> list[str]:
        if source.remote:
            raise ValueError("copies are made from the local repository only")
        if not ids:
            raise ValueError("restic copy without snapshot ids would copy every snapshot")
        return [
            *self._base(destination),
            "--retry-lock",
            self.retry_lock,
            "copy",
            *source.from_options(),
            "--",
            *ids,
        ]

    def forget_argv(self, repo: Repo, ids: Sequence[str], prune: bool = True) -> list[str]:
        if not ids:
            # `restic forget` with no ids and no policy does nothing; refuse to be ambiguous.
            raise ValueError("restic forget needs the ids the rotation chose")
        args = [*self._base(repo), "--retry-lock", self.retry_lock, "forget"]
        if prune:
            args.append("--prune")
        return [*args, "--", *ids]

    def prune_argv(self, repo: Repo) -> list[str]:
        return [*self._base(repo), "--retry-lock", self.retry_lock, "prune"]

    def unlock_argv(self, repo: Repo) -> list[str]:
        # Removes only stale locks (a copy killed half-way leaves one behind).
        return [*self._base(repo), "unlock"]

    def check_argv(self, repo: Repo, subset: str | None = None) -> list[str]:
        args = [*self._base(repo), "--retry-lock", self.retry_lock, "check"]
        if subset:
            args.append(f"--read-data-subset={subset}")
        return args

    def dump_argv(self, repo: Repo, snapshot_id: str, path: str) -> list[str]:
        return [*self._base(repo), "--no-lock", "dump", "--", snapshot_id, path]

    def restore_argv(
        self,
        repo: Repo,
        snapshot_id: str,
        target: str,
        includes: Sequence[str] = (),
        delete: bool = False,
    ) -> list[str]:
        args = [*self._base(repo), "--no-lock", "restore", "--target", target, "--verify"]
        if delete:
            args.append("--delete")  # files created after the snapshot go too
        for pattern in includes:
            args += ["--include", pattern]
        return [*args, "--", snapshot_id]

    # -- execution ---------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """restic's whole environment: no RESTIC_* from the caller, no password variable."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "TZ": "UTC",
            "LC_ALL": "C",
        }
        env.update(self.extra_env)
        leaked = [k for k in env if k.startswith("RESTIC_") and "PASSWORD" in k]
        if leaked:
            raise ValueError(f"refusing to pass {', '.join(leaked)} to restic: use a password file")
        return env

    def run(
        self,
        argv: Sequence[str],
        what: str,
        timeout: float | None = None,
        ok_codes: Sequence[int] = (0,),
        stdout: Any = subprocess.PIPE,
    ) -> subprocess.CompletedProcess[str]:
        check_no_secret_in_argv(argv)
        try:
            proc = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                env=self.environment(),
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise ResticError(what, 127, f"{argv[0]}: not found") from None
        except subprocess.TimeoutExpired:
            raise ResticError(what, 124, f"timed out after {timeout} s") from None
        if proc.returncode not in ok_codes:
            raise ResticError(what, proc.returncode, proc.stderr or "")
        return proc

    def snapshots(self, repo: Repo, timeout: float | None = 600) -> list[dict[str, Any]]:
        proc = self.run(self.snapshots_argv(repo), f"list snapshots of {repo.tier}", timeout)
        return json.loads(proc.stdout or "[]") or []

    def exists(self, repo: Repo, timeout: float | None = 300) -> bool:
        proc = self.run(
            self.cat_config_argv(repo),
            f"open repository {repo.tier}",
            timeout,
            ok_codes=(0, EXIT_NO_REPO),
        )
        return proc.returncode == 0


def _tag_args(tags: Iterable[str]) -> list[str]:
    args: list[str] = []
    for tag in tags:
        if not tag or "," in tag:
            raise ValueError(f"bad restic tag {tag!r}")
        args += ["--tag", tag]
    return args


def restic_time_arg(when: datetime) -> str:
    """`--time` value: restic reads it in its TZ, which we set to UTC (no DST ambiguity)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: give a time zone")
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_summary(stdout: str) -> dict[str, Any]:
    """The `summary` message of `restic backup --json` (the last JSON line)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("message_type") == "summary":
            return message
    raise ValueError("restic backup printed no summary")


# Options whose next argument must never be a secret value: restic has none that takes a
# password, but a future edit could add `--password`, or a dump command `-pSECRET`.
_FORBIDDEN_FLAGS = ("--password", "-p", "--key")


def check_no_secret_in_argv(argv: Sequence[str]) -> None:
    """Refuse a command line that carries a password (R-GDPR-1; issue 6: never in argv)."""
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name in _FORBIDDEN_FLAGS or (arg.startswith("-p") and len(arg) > 2 and "/" not in arg):
            raise ValueError(f"refusing a command line with a secret-bearing option {name!r}")
        if name.startswith("--password") and name != "--password-file" and "file" not in name:
            raise ValueError(f"refusing a command line with {name!r}: use a password file")
