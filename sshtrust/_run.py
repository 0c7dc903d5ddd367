"""Run ``ssh-keygen`` safely (through localcmd: argv only, no stdin, C locale) and turn its
failures into this package's errors, stderr in every message."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

import localcmd

SSH_KEYGEN = os.environ.get("SSHTRUST_SSH_KEYGEN", "ssh-keygen")


class SshTrustError(RuntimeError):
    """Base class: every failure in this package names what failed."""


class ToolError(SshTrustError):
    """An external tool (``ssh-keygen``) failed; carries its exit code and stderr."""

    def __init__(self, what: str, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.what = what
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        detail = self.stderr or "(no stderr)"
        super().__init__(f"{what} failed: {' '.join(self.argv)} exited {returncode}: {detail}")


def run_keygen(
    what: str, args: Sequence[str], *, ok_codes: Sequence[int] = (0,)
) -> subprocess.CompletedProcess[str]:
    """Run ssh-keygen with ``args`` (localcmd.run: argv only, C locale).

    stdin is /dev/null so a key that unexpectedly wants a passphrase fails instead of hanging,
    and no secret ever travels on the command line (R-GDPR-5: CA keys stay in their 0600 files).
    """
    argv = [SSH_KEYGEN, *args]
    try:
        proc = localcmd.run(argv, timeout=120, check=False)
    except localcmd.CommandError as exc:  # did not start or timed out
        raise ToolError(what, argv, -1, exc.stderr) from exc
    if proc.returncode not in ok_codes:
        raise ToolError(what, argv, proc.returncode, proc.stderr)
    return proc
