"""dev-sec mysql-baseline's controls as pure functions over what tests/verify/test_mariadb.py
reads from a live MariaDB (rows of SQL, `dpkg-query`, file modes): data in, one problem line per
finding out; unit-tested with healthy and broken inputs (tests/unit/verify/test_mysql_baseline.py).

Written from the control texts of dev-sec/mysql-baseline (controls/mysql_db.rb,
controls/mysql_conf.rb), not from the deploy's fixer (onhost/web/hw_db.py): the check that
repairs a host and the check that grades it must not share a bug (issue 17). Where MariaDB on
Debian 13 differs from the MySQL the baseline was written for, the adaptation is said at the
control.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable

# dev-sec mysql-db-06 ignores these two: root, and Debian's old maintenance account.
GRANT_OPTION_ALLOWED = {"root", "debian-sys-maint"}
# dev-sec mysql-db-08: where root may log in from.
ROOT_HOSTS = {"localhost", "127.0.0.1", "::1"}
# Plugins that authenticate by a password (an empty authentication_string = no password).
# unix_socket, gssapi, pam prove identity otherwise (root logs in by unix_socket on Debian).
PASSWORD_PLUGINS = {"", "mysql_native_password", "mysql_old_password", "ed25519", "parsec",
                    "caching_sha2_password", "sha256_password"}
# Drupal core's INSTALL.mysql.txt grants exactly these on the site's database; LOCK TABLES is
# the one extra tolerated (mariadb-dump/drush sql-dump without --single-transaction need it).
DRUPAL_PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX", "ALTER",
                     "CREATE TEMPORARY TABLES"}
TOLERATED_EXTRA = {"LOCK TABLES"}


def db_01_problems(version: str, package_version: str) -> list[str]:
    """mysql-db-01 "use supported mysql version in production": dev-sec rejects a Community
    build; adapted: the server running is the distribution's build, the version Debian's
    security team supports (R-MNT-3), i.e. the installed package's (a server left running on an
    old binary after a security update fails here)."""
    problems = []
    if "community" in version.lower():
        problems.append(f"mysql-db-01: a Community build runs ({version})")
    if "mariadb" not in version.lower():
        problems.append(f"mysql-db-01: not Debian's MariaDB ({version})")
    running = version.split("-", 1)[0]
    m = re.match(r"^(?:\d+:)?([0-9.]+)", package_version)
    packaged = m.group(1) if m else ""
    if running != packaged:
        problems.append(f"mysql-db-01: server {running or version!r} is not the installed "
                        f"package's version {package_version!r}")
    return problems


def db_02_problems(version: str) -> list[str]:
    """mysql-db-02 "use mysql version 5 or higher": the major version."""
    m = re.match(r"^(\d+)\.", version)
    if not m or int(m.group(1)) < 5:
        return [f"mysql-db-02: version {version!r} is below 5"]
    return []


def db_03_problems(schemas: Iterable[str]) -> list[str]:
    """mysql-db-03 "test database must be deleted" (and Debian's old test\\_% pattern)."""
    found = sorted(s for s in schemas if s == "test" or s.startswith("test_"))
    return [f"mysql-db-03: test databases exist: {', '.join(found)}"] if found else []


def db_04_problems(users: Iterable[tuple[str, str]]) -> list[str]:
    """mysql-db-04 "deactivate anonymous user names": no account with an empty user."""
    found = sorted(f"@{host}" for user, host in users if user == "")
    return [f"mysql-db-04: anonymous accounts exist: {', '.join(found)}"] if found else []


def _auth_methods(priv: dict) -> list[dict]:
    """Each way to log in: `auth_or` lists them (an empty entry stands for the top-level
    plugin and authentication_string, as MariaDB writes root's `... OR unix_socket`)."""
    top = {"plugin": priv.get("plugin", ""),
           "authentication_string": priv.get("authentication_string", "")}
    return [m or top for m in priv.get("auth_or") or [top]]


def db_05_problems(accounts: Iterable[tuple[str, str, str]]) -> list[str]:
    """mysql-db-05 "default passwords must be changed": no account that logs in with an empty
    password. Adapted to MariaDB >= 10.4, where mysql.user is a view over mysql.global_priv
    (its JSON holds each authentication method and the lock): a locked account (MariaDB's own
    mariadb.sys) cannot log in, and unix_socket needs no password by design.
    `accounts`: (User, Host, Priv JSON) rows of mysql.global_priv."""
    found = []
    for user, host, priv_json in accounts:
        priv = json.loads(priv_json or "{}")
        if priv.get("account_locked") in (True, "true", 1):
            continue
        if any(m.get("plugin", "") in PASSWORD_PLUGINS and not m.get("authentication_string")
               for m in _auth_methods(priv)):
            found.append(f"{user}@{host}")
    return [f"mysql-db-05: accounts without a password: {', '.join(sorted(found))}"] \
        if found else []


def db_06_problems(user_grants: Iterable[tuple[str, str, str]],
                   db_grants: Iterable[tuple[str, str, str]] = ()) -> list[str]:
    """mysql-db-06 "the grant option must not be used": no account but root with Grant_priv,
    globally (mysql.user, dev-sec's query) or on a database (mysql.db, added here).
    Rows: (User, Host, Grant_priv) and (User, Host, Db)."""
    found = sorted({f"{u}@{h}" for u, h, g in user_grants
                    if g.upper() == "Y" and u not in GRANT_OPTION_ALLOWED} |
                   {f"{u}@{h} on {d}" for u, h, d in db_grants if u not in GRANT_OPTION_ALLOWED})
    return [f"mysql-db-06: accounts with the grant option: {', '.join(found)}"] if found else []


def db_07_problems(users: Iterable[tuple[str, str]]) -> list[str]:
    """mysql-db-07 "ensure no wildcards are used for hostnames": '%' anywhere in Host."""
    found = sorted(f"{u}@{h}" for u, h in users if "%" in h)
    return [f"mysql-db-07: accounts for wildcard hosts: {', '.join(found)}"] if found else []


def db_08_problems(users: Iterable[tuple[str, str]]) -> list[str]:
    """mysql-db-08 "superuser can login via localhost only"."""
    found = sorted(f"{u}@{h}" for u, h in users if u == "root" and h not in ROOT_HOSTS)
    return [f"mysql-db-08: root may log in from {', '.join(found)}"] if found else []


def conf_06_problems(log_error: str, log_file: tuple[str, str, int] | None,
                     standard_error: str, standard_output: str,
                     world_readable_journal: Iterable[str]) -> list[str]:
    """mysql-conf-06 "ensure log file is owned by mysql user" (group adm on Debian, nothing for
    others). Adapted: Debian 13's MariaDB leaves log_error empty and writes its error log to
    stderr, which systemd sends to the journal; then the journal is the log file, and no file
    of it may be readable by others. `log_file`: (owner, group, mode) of @@log_error's file."""
    if log_error and log_error != "stderr":
        if log_file is None:
            return [f"mysql-conf-06: log_error {log_error} does not exist"]
        owner, group, mode = log_file
        if owner != "mysql" or group not in ("adm", "mysql") or mode & 0o007:
            return [f"mysql-conf-06: {log_error} is {owner}:{group} {oct(mode)}, want "
                    "mysql:adm, nothing for others"]
        return []
    problems = []
    sink = standard_output if standard_error == "inherit" else standard_error
    if sink not in ("journal", "journal+console", "kmsg+console"):
        problems.append(f"mysql-conf-06: log_error is empty and the unit's stderr goes to "
                        f"{sink!r}, not the journal")
    exposed = sorted(world_readable_journal)
    if exposed:
        problems.append(f"mysql-conf-06: journal files readable by others: {', '.join(exposed)}")
    return problems


def _schema_matches(pattern: str, database: str) -> bool:
    # GRANT ON `a_b`.* stores a_b (the _ then matches any character) or a\_b when escaped.
    return pattern.replace("\\_", "_").replace("\\%", "%") == database


def site_grant_problems(user: str, database: str,
                        user_privileges: Iterable[tuple[str, str, str]],
                        schema_privileges: Iterable[tuple[str, str, str, str]],
                        table_privileges: Iterable[tuple[str, str]]) -> list[str]:
    """The site's account (R-GDPR-4): USAGE globally, Drupal's privileges on its own database
    only, no grant option, no table or column grants. Rows of information_schema:
    USER_PRIVILEGES (GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE), SCHEMA_PRIVILEGES (GRANTEE,
    TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE), TABLE_PRIVILEGES and COLUMN_PRIVILEGES
    (GRANTEE, TABLE_SCHEMA)."""
    grantee = f"'{user}'@'localhost'"
    problems = []
    glob = {p for g, p, _ in user_privileges if g == grantee}
    if glob - {"USAGE"}:
        problems.append(f"{user}: global privileges {', '.join(sorted(glob - {'USAGE'}))}")
    if any(g == grantee and grantable == "YES" for g, _, grantable in user_privileges):
        problems.append(f"{user}: grant option globally")
    mine, others = set(), set()
    for g, schema, priv, grantable in schema_privileges:
        if g != grantee:
            continue
        if not _schema_matches(schema, database):
            others.add(schema)
            continue
        mine.add(priv)
        if grantable == "YES":
            problems.append(f"{user}: grant option on {schema}")
    if others:
        problems.append(f"{user}: privileges on other databases: {', '.join(sorted(others))}")
    if DRUPAL_PRIVILEGES - mine:
        problems.append(f"{user}: missing on {database}: "
                        f"{', '.join(sorted(DRUPAL_PRIVILEGES - mine))}")
    if mine - DRUPAL_PRIVILEGES - TOLERATED_EXTRA:
        problems.append(f"{user}: beyond Drupal's on {database}: "
                        f"{', '.join(sorted(mine - DRUPAL_PRIVILEGES - TOLERATED_EXTRA))}")
    tables = sorted({schema for g, schema in table_privileges if g == grantee})
    if tables:
        problems.append(f"{user}: table or column grants in {', '.join(tables)}")
    return problems
