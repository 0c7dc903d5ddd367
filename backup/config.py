"""The runner's configuration on a host: one JSON file per site, written by the backup role.

JSON (not a Python or INI file) because the role renders it from the inventory and the
runner must read it with the standard library only. Every field is checked here, so a wrong
file stops the run at once with the field's name, never half-way through a backup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup.policy import Policy
from backup.restic import Repo, Restic

DEFAULT_DIR = Path("/etc/hosting/backup")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Database:
    name: str
    # A MariaDB option file ([client] user/password): the credentials never reach argv.
    option_file: str
    dump_program: str = "mariadb-dump"
    client_program: str = "mariadb"
    # Tables whose rows are logs (Drupal's watchdog): structure only (R-GDPR-11).
    log_tables: tuple[str, ...] = ()

    def dump_command(self) -> list[str]:
        # --defaults-extra-file must come first; --skip-dump-date makes equal data give an
        # equal dump (dedup, and the restore check compares hashes); --single-transaction
        # gives a consistent InnoDB view without locking the site.
        return [
            self.dump_program,
            f"--defaults-extra-file={self.option_file}",
            "--single-transaction",
            "--skip-dump-date",
            # Only what the site's own user may read: --routines/--events need more rights.
            "--triggers",
            "--hex-blob",
            *(f"--ignore-table-data={self.name}.{t}" for t in self.log_tables),
            self.name,
        ]


@dataclass(frozen=True)
class SiteBackup:
    """Everything one site's nightly run needs."""

    site: str
    host: str  # restic --host: the site's web host name, kept when restored elsewhere
    policy: Policy
    restic: Restic
    local: Repo
    a: Repo
    b: Repo
    database: Database
    paths: tuple[str, ...]  # code, public and private files, host config (R-BKP-8)
    excludes: tuple[str, ...]  # log directories and caches (R-GDPR-11)
    required_mounts: tuple[str, ...]  # e.g. the gocryptfs plaintext view of private files
    state_dir: str  # status.json, runs.jsonl
    lock_file: str
    check_subsets: int = 28  # storage side: every pack read once in this many days
    # Restore (backup.restore): the site's data paths under its root, restored in place with
    # --delete; the units stopped meanwhile (PHP-FPM, the site's cron).
    restore_root: str = ""
    restore_subpaths: tuple[str, ...] = ()
    stop_units: tuple[str, ...] = ()

    @property
    def dump_filename(self) -> str:
        return f"{self.site}.sql"

    @property
    def dump_path(self) -> str:
        return f"/{self.dump_filename}"

    def repo(self, tier: str) -> Repo:
        return {"local": self.local, "a": self.a, "b": self.b}[tier]


def policy_from(data: dict[str, Any]) -> Policy:
    """The model's `backup` block (inventory) to a Policy: weekday names to numbers."""
    day = data.get("weekly_day", "sunday")
    if day not in WEEKDAYS:
        raise ConfigError(f"backup.weekly_day: {day!r} is not a weekday name")
    numbers = {
        k: data[k]
        for k in ("local_keep_days", "a_keep_days", "weekly_keep_days", "monthly_keep_days")
        if k in data
    }
    try:
        return Policy(
            timezone=data.get("timezone", "Europe/Paris"),
            weekly_day=WEEKDAYS.index(day),
            **numbers,
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"backup policy: {error}") from None


def _field(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _field(data, key, list, where)
    if not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"{where}.{key}: expected a list of non-empty strings")
    return tuple(values)


def _repo(data: dict[str, Any], tier: str, password_file: str) -> Repo:
    where = f"repositories.{tier}"
    entry = _field(data, tier, dict, "repositories")
    location = _field(entry, "location", str, where)
    alias = entry.get("ssh_alias")
    if tier != "local" and not alias:
        # R-BKP-7: off-site transfers only over SSH with certificates.
        raise ConfigError(f"{where}: off-site repositories are reached only over SSH (ssh_alias)")
    return Repo(
        tier=tier,
        location=location,
        password_file=password_file,
        ssh_alias=alias,
        ssh_config=entry.get("ssh_config"),
        ssh_program=entry.get("ssh_program", "ssh"),
    )


def parse(data: dict[str, Any], source: str = "config") -> SiteBackup:
    try:
        site = _field(data, "site", str, source)
        password_file = _field(data, "password_file", str, source)
        repos = _field(data, "repositories", dict, source)
        db = _field(data, "database", dict, source)
        restic = data.get("restic", {})
        paths = _strings(data, "paths", source)
        for p in paths:
            if not p.startswith("/"):
                raise ConfigError(f"{source}.paths: {p!r} is not an absolute path")
        return SiteBackup(
            site=site,
            host=data.get("host", f"web-{site}"),
            policy=policy_from(_field(data, "policy", dict, source)),
            restic=Restic(
                binary=restic.get("binary", "restic"),
                cache_dir=restic.get("cache_dir"),
                retry_lock=restic.get("retry_lock", "10m"),
            ),
            local=_repo(repos, "local", password_file),
            a=_repo(repos, "a", password_file),
            b=_repo(repos, "b", password_file),
            database=Database(
                name=_field(db, "name", str, f"{source}.database"),
                option_file=_field(db, "option_file", str, f"{source}.database"),
                dump_program=db.get("dump_program", "mariadb-dump"),
                client_program=db.get("client_program", "mariadb"),
                log_tables=tuple(db.get("log_tables", ())),
            ),
            paths=paths,
            excludes=_strings(data, "excludes", source),
            required_mounts=tuple(data.get("required_mounts", [])),
            state_dir=_field(data, "state_dir", str, source),
            lock_file=_field(data, "lock_file", str, source),
            check_subsets=int(data.get("check_subsets", 28)),
            restore_root=str(data.get("restore", {}).get("root", "")),
            restore_subpaths=tuple(data.get("restore", {}).get("subpaths", ())),
            stop_units=tuple(data.get("restore", {}).get("stop_units", ())),
        )
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError) as error:
        raise ConfigError(f"{source}: {error}") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """A config file's JSON object, or a ConfigError naming the file and what is wrong."""
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except ValueError as error:
        raise ConfigError(f"{path}: not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def load(path: str | Path) -> SiteBackup:
    path = Path(path)
    return parse(read_json_object(path), str(path))


def config_path(site: str, directory: Path = DEFAULT_DIR) -> Path:
    return directory / f"{site}.json"
