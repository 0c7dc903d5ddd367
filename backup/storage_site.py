"""One site's repository on a storage server (backup-a, backup-b): its configuration, read once.

/etc/hosting/backup-storage/<site>.json, written by `fab deploy` (roles/backup/config.py
storage_config). The rotation (backup.rotate) and the ledger (backup.ledger) read it; a bad
field is a ConfigError naming it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup.config import ConfigError, policy_from, read_json_object
from backup.policy import Policy
from backup.restic import Repo, Restic
from backup.rotation import TIER_A, TIER_B
from backup.suspect import Expectation

DEFAULT_DIR = Path("/etc/hosting/backup-storage")


@dataclass(frozen=True)
class StorageSite:
    site: str
    tier: str
    host: str  # the web host whose series this repository holds (restic --host)
    policy: Policy
    restic: Restic
    repo: Repo
    state_dir: str
    lock_file: str
    check_subsets: int = 28
    expect: Expectation | None = None  # what the runner writes (backup.suspect); from `host`
    quota_bytes: int | None = None  # the site's space limit on this server (backup.serve)
    request_allowance: int = 64 * 2**20  # bytes of requests a session may send past it

    def __post_init__(self) -> None:
        if self.expect is None:
            object.__setattr__(self, "expect", Expectation(self.host))


def parse(data: dict[str, Any], source: str = "config") -> StorageSite:
    try:
        tier = data["tier"]
        if tier not in (TIER_A, TIER_B):
            raise ConfigError(f"{source}.tier: {tier!r} is not 'a' or 'b'")
        restic = data.get("restic", {})
        subsets = int(data.get("check_subsets", 28))
        if not 1 <= subsets <= 1000:
            raise ConfigError(f"{source}.check_subsets: {subsets} is not within 1..1000")
        host = data.get("host", f"web-{data['site']}")
        try:
            expect = Expectation.from_config(data, host)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}.{error}") from None
        quota = data.get("quota_gb")
        if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int | float)
                                  or quota <= 0):
            raise ConfigError(f"{source}.quota_gb: {quota!r} is not a positive number of GB")
        return StorageSite(
            site=data["site"],
            tier=tier,
            host=host,
            policy=policy_from(data["policy"]),
            restic=Restic(binary=restic.get("binary", "restic"),
                          cache_dir=restic.get("cache_dir"),
                          retry_lock=restic.get("retry_lock", "30m")),
            repo=Repo(tier=tier, location=data["repository"],
                      password_file=data["password_file"]),
            state_dir=data["state_dir"],
            lock_file=data["lock_file"],
            check_subsets=subsets,
            expect=expect,
            quota_bytes=None if quota is None else int(quota * 2**30),
            request_allowance=int(float(data.get("request_allowance_mb", 64)) * 2**20),
        )
    except KeyError as missing:
        raise ConfigError(f"{source}: missing field {missing}") from None
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{source}: {error}") from None


def load_site(path: str | Path) -> StorageSite:
    path = Path(path)
    return parse(read_json_object(path), str(path))


def command_line(prog: str, argv: Sequence[str] | None,
                 more: Callable[[argparse.ArgumentParser], None] = lambda _p: None,
                 ) -> tuple[argparse.Namespace, StorageSite | None]:
    """The storage-side commands' shared start: `--site NAME [--config PATH]` plus `more`'s
    options, and the site's configuration; None (the error said on stderr) when it is bad."""
    p = argparse.ArgumentParser(prog=f"python3 -m {prog}")
    p.add_argument("--site", required=True)
    p.add_argument("--config", help=f"default: {DEFAULT_DIR}/SITE.json")
    more(p)
    args = p.parse_args(argv)
    try:
        return args, load_site(args.config or DEFAULT_DIR / f"{args.site}.json")
    except ConfigError as error:
        print(f"{prog} {args.site}: bad configuration: {error}", file=sys.stderr)
        return args, None
