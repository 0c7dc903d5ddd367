"""The one way the admin side runs a command on its own machine (issue 12): `ssh-keygen`,
`git`, `composer`, `pulumi`, `python -m lab`, pytest, the lab's `ip`/`nft`/`machinectl`.

    run(argv, *, timeout=120, input=None, cwd=None, env=None, check=True, capture=True, text=True)

- argv only, never a shell; C locale (messages parsed or shown are in English);
- stdin is /dev/null unless `input` is given, so a tool that unexpectedly asks something
  (a passphrase, a git credential) fails instead of hanging; `input` is how a secret travels
  (never argv: R-GDPR-5), and it is never part of an error message;
- a command that cannot start, times out or (with check) exits non-zero raises CommandError,
  which names the command and carries its exit code and the tail of its stderr.

On-host code (onhost/, backup/) keeps its own copy: it runs with Debian's python3 and the
standard library only. Commands on the hosts go over SSH (engine/remote.py, lab/lab.py). The
processes the lab supervises for its lifetime (systemd-nspawn, the apt proxy: lab/procs.py,
lab/supervise.py) are started with subprocess.Popen: they are not commands run to completion.
"""
from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

STDERR_TAIL = 1500  # characters of stderr an error carries: the end is where tools say why


class CommandError(RuntimeError):
    """A command failed: `argv`, `returncode` (None: it did not start or timed out) and the
    tail of its `stderr`. Never its stdin."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv = [str(a) for a in argv]
        self.returncode = returncode
        self.stderr = stderr.strip()[-STDERR_TAIL:]
        how = "failed to run" if returncode is None else f"exited {returncode}"
        super().__init__(f"{shlex.join(self.argv)} {how}: {self.stderr or '(no stderr)'}")


def run(argv: Sequence[str | Path], *, timeout: float | None = 120,
        input: str | bytes | None = None, cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True, capture: bool = True, text: bool = True,
        ) -> subprocess.CompletedProcess:
    """Run `argv` and return the CompletedProcess (stdout and stderr captured unless
    `capture` is False: then they go to this terminal). `env` adds to this process's
    environment. `timeout` in seconds (None only for a command the user watches, such as
    `fab verify`'s pytest)."""
    args = [str(a) for a in argv]
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    try:
        proc = subprocess.run(args, input=input, capture_output=capture, text=text,
                              cwd=cwd, env=full_env, timeout=timeout, check=False,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CommandError(args, None, f"timed out after {timeout} s") from None
    except FileNotFoundError as exc:
        what = f"no directory {cwd}" if cwd and not Path(cwd).is_dir() else "not installed"
        raise CommandError(args, None, f"{what} ({exc.strerror})") from None
    except OSError as exc:  # not executable, ...
        raise CommandError(args, None, exc.strerror or str(exc)) from None
    if check and proc.returncode != 0:
        stderr = proc.stderr if capture else ""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        raise CommandError(args, proc.returncode, stderr or "")
    return proc


def ok(argv: Sequence[str | Path], timeout: float = 60) -> bool:
    """True when the command exits 0 (to probe state, never to change it)."""
    return run(argv, timeout=timeout, check=False).returncode == 0
