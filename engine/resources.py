"""Desired state: what a role wants a host to look like, as plain immutable data.

A role returns a list of these; `engine.decide` compares them with the facts read from the
host and returns the actions that make the host match. Nothing here touches a host.

Rule for role authors: a resource's identity (its path, unit, key, package names) must not
depend on the host's facts, only its content may (e.g. sshd algorithms filtered by what the
host's OpenSSH supports). The engine asks for the facts of the identities first, in one round
trip, then builds the resources again with the real facts.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Handler:
    """A command run once at the end, and only if an action that notifies it succeeded
    (reload sshd after its config changed, apply nftables after its ruleset changed)."""

    name: str
    argv: tuple[str, ...]
    timeout: int = 120


@dataclass(frozen=True)
class File:
    """A regular file with exact content, mode and owner.

    `validate` is a shell command run ON THE HOST against the new content in a temporary file
    beside the target (`{}` is replaced by its path), e.g. ``sshd -t -f {}``: if it fails, the
    live file is left untouched and the host fails. The replacement is an atomic rename.
    `create_only` writes the file only when it is missing (a KRL a deploy must never roll back).
    `sensitive` hides the content from diffs and logs.
    """

    path: str
    content: str | bytes = ""
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    validate: str | None = None
    notify: tuple[str, ...] = ()
    create_only: bool = False
    sensitive: bool = False

    @property
    def key(self) -> str:
        return f"file:{self.path}"

    @property
    def data(self) -> bytes:
        return self.content.encode() if isinstance(self.content, str) else self.content


@dataclass(frozen=True)
class Absent:
    """A path that must not exist (a superseded drop-in, say)."""

    path: str
    notify: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"absent:{self.path}"


@dataclass(frozen=True)
class Directory:
    path: str
    mode: int = 0o755
    owner: str = "root"
    group: str = "root"

    @property
    def key(self) -> str:
        return f"dir:{self.path}"


@dataclass(frozen=True)
class Packages:
    """Debian packages installed (or purged with present=False). Every missing package of a
    host is installed in ONE apt-get run, whatever the number of Packages resources."""

    names: tuple[str, ...]
    present: bool = True

    @property
    def key(self) -> str:
        return f"packages:{'+' if self.present else '-'}{','.join(self.names)}"


@dataclass(frozen=True)
class Service:
    """A systemd unit's state. `enabled`/`running` None means "don't care".

    `masked=True` means: if the unit exists, stop it and mask it (the minimal set of
    services); a unit that is not installed is left alone.
    """

    unit: str
    enabled: bool | None = True
    running: bool | None = True
    masked: bool = False
    reason: str = ""  # why a state is not wanted, shown when it matters (container skips)

    @property
    def key(self) -> str:
        return f"service:{self.unit}"


@dataclass(frozen=True)
class Sysctl:
    """A kernel parameter's running value. Persisting it is a File in /etc/sysctl.d.

    In a container only `net.*` keys can be written (DESIGN.md): others are skipped there,
    and the report says so.
    """

    key_name: str
    value: str
    notify: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"sysctl:{self.key_name}"

    @property
    def container_safe(self) -> bool:
        return self.key_name.startswith("net.")


@dataclass(frozen=True)
class User:
    """A local account (later roles: one Unix user per site, R-GDPR-4)."""

    name: str
    home: str
    shell: str = "/usr/sbin/nologin"
    system: bool = True
    groups: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"user:{self.name}"


@dataclass(frozen=True)
class Probe:
    """A read-only command whose output must equal a file on the host (the live nftables
    ruleset vs. the listing recorded when it was last applied): when they differ, `notify`
    handlers run, and check mode shows the difference as a diff."""

    name: str
    argv: tuple[str, ...]
    expect_from: str  # path of a file on the host holding the expected output
    notify: tuple[str, ...] = ()
    summary: str = ""

    @property
    def key(self) -> str:
        return f"probe:{self.name}"


Resource = File | Absent | Directory | Packages | Service | Sysctl | User | Probe
