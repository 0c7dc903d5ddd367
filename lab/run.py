"""Run external tools: argv only (no shell), C locale, stderr in every error message."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence


class CommandError(RuntimeError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(
            f"{' '.join(self.argv)} exited {returncode}: {self.stderr or '(no stderr)'}")


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 120,
        input: str | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output; raise CommandError (with stderr) on failure."""
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                              env=full_env, timeout=timeout, check=False,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout}s") from exc
    except OSError as exc:
        raise CommandError(argv, -1, str(exc)) from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr)
    return proc


def ok(argv: Sequence[str], timeout: float = 60) -> bool:
    """True when the command exits 0 (used to probe state, never to change it)."""
    return run(argv, check=False, timeout=timeout).returncode == 0
