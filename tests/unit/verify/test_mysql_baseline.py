"""tests/verify/mysql_baseline.py: dev-sec mysql-baseline's controls over rows as a Debian 13
MariaDB prints them, healthy and broken (issue 17's mutation proofs: each broken input makes
the control report the account, database or file at fault)."""
from __future__ import annotations

import json

import pytest

from tests.verify import mysql_baseline as mb

VERSION = "11.8.9-MariaDB-0+deb13u1 from Debian"
PACKAGE = "1:11.8.9+ds-0+deb13u1"
ROOT = json.dumps({"access": 549755813887, "plugin": "mysql_native_password",
                   "authentication_string": "invalid",
                   "auth_or": [{}, {"plugin": "unix_socket"}]})
SYS = json.dumps({"access": 0, "plugin": "mysql_native_password", "authentication_string": "",
                  "account_locked": True})
SITE = json.dumps({"access": 0, "plugin": "mysql_native_password",
                   "authentication_string": "*0123456789ABCDEF0123456789ABCDEF01234567"})
ACCOUNTS = [("root", "localhost", ROOT), ("mariadb.sys", "localhost", SYS),
            ("site", "localhost", SITE)]
USERS = [(u, h) for u, h, _ in ACCOUNTS]


def test_db_01_debians_running_build_passes():
    assert mb.db_01_problems(VERSION, PACKAGE) == []


@pytest.mark.parametrize("version,package,found", [
    ("8.0.36-Community", PACKAGE, "a Community build runs"),
    ("11.8.9-0ubuntu", PACKAGE, "not Debian's MariaDB"),
    ("11.8.3-MariaDB-0+deb13u1 from Debian", PACKAGE, "is not the installed package's"),
])
def test_db_01_other_build_or_stale_server_fails(version, package, found):
    assert any(found in p for p in mb.db_01_problems(version, package))


def test_db_02_major_below_5_fails():
    assert mb.db_02_problems(VERSION) == []
    assert mb.db_02_problems("4.1.22-log") == ["mysql-db-02: version '4.1.22-log' is below 5"]


def test_db_03_test_databases_fail():
    assert mb.db_03_problems(["mysql", "site", "testing"]) == []
    assert mb.db_03_problems(["test", "test_x", "site"]) == [
        "mysql-db-03: test databases exist: test, test_x"]


def test_db_04_anonymous_account_fails():
    assert mb.db_04_problems(USERS) == []
    assert mb.db_04_problems([*USERS, ("", "localhost")]) == [
        "mysql-db-04: anonymous accounts exist: @localhost"]


def test_db_05_locked_and_unix_socket_accounts_pass():
    assert mb.db_05_problems(ACCOUNTS) == []


@pytest.mark.parametrize("priv", [
    {"plugin": "mysql_native_password", "authentication_string": ""},
    {"plugin": "", "authentication_string": ""},
    {"plugin": "ed25519", "authentication_string": "", "account_locked": False},
    {"plugin": "unix_socket", "auth_or": [{"plugin": "mysql_native_password"}, {}]},
], ids=["native-empty", "no-plugin", "ed25519-empty-unlocked", "auth-or-empty-password"])
def test_db_05_account_without_password_fails(priv):
    assert mb.db_05_problems([*ACCOUNTS, ("drift", "localhost", json.dumps(priv))]) == [
        "mysql-db-05: accounts without a password: drift@localhost"]


def test_db_06_grant_option_beyond_root_fails():
    rows = [("root", "localhost", "Y"), ("site", "localhost", "N")]
    assert mb.db_06_problems(rows) == []
    assert mb.db_06_problems([*rows, ("site", "localhost", "Y")],
                             [("other", "localhost", "site")]) == [
        "mysql-db-06: accounts with the grant option: other@localhost on site, site@localhost"]


def test_db_07_wildcard_host_fails():
    assert mb.db_07_problems(USERS) == []
    assert mb.db_07_problems([*USERS, ("site", "%"), ("x", "10.0.%")]) == [
        "mysql-db-07: accounts for wildcard hosts: site@%, x@10.0.%"]


def test_db_08_root_from_elsewhere_fails():
    assert mb.db_08_problems([*USERS, ("root", "127.0.0.1"), ("root", "::1")]) == []
    assert mb.db_08_problems([*USERS, ("root", "10.0.0.5")]) == [
        "mysql-db-08: root may log in from root@10.0.0.5"]


def test_conf_06_journal_closed_to_others_passes():
    assert mb.conf_06_problems("", None, "inherit", "journal", []) == []


def test_conf_06_world_readable_journal_or_no_journal_fails():
    journal = "/var/log/journal/x/system.journal"
    assert mb.conf_06_problems("", None, "inherit", "journal", [journal]) == [
        f"mysql-conf-06: journal files readable by others: {journal}"]
    assert mb.conf_06_problems("", None, "null", "journal", []) == [
        "mysql-conf-06: log_error is empty and the unit's stderr goes to 'null', not the journal"]


def test_conf_06_log_file_owner_and_mode():
    path = "/var/log/mysql/error.log"
    assert mb.conf_06_problems(path, ("mysql", "adm", 0o640), "", "", []) == []
    assert mb.conf_06_problems(path, ("mysql", "adm", 0o644), "", "", []) == [
        f"mysql-conf-06: {path} is mysql:adm 0o644, want mysql:adm, nothing for others"]
    assert mb.conf_06_problems(path, None, "", "", []) == [
        f"mysql-conf-06: log_error {path} does not exist"]


GRANTEE = "'site'@'localhost'"
DRUPAL = sorted(mb.DRUPAL_PRIVILEGES | {"LOCK TABLES"})


def grants(extra_schema=(), user=(("USAGE", "NO"),), tables=()):
    return ([(GRANTEE, p, g) for p, g in user],
            [(GRANTEE, "site_db", p, "NO") for p in DRUPAL] + list(extra_schema),
            list(tables))


def test_site_grants_drupals_privileges_on_its_own_database_pass():
    assert mb.site_grant_problems("site", "site_db", *grants()) == []
    escaped = ([(GRANTEE, "USAGE", "NO")], [(GRANTEE, "site\\_db", p, "NO") for p in DRUPAL], [])
    assert mb.site_grant_problems("site", "site_db", *escaped) == []


@pytest.mark.parametrize("broken,found", [
    (grants(extra_schema=[(GRANTEE, "other_db", "SELECT", "NO")]),
     "site: privileges on other databases: other_db"),
    (grants(extra_schema=[(GRANTEE, "site_db", "TRIGGER", "NO")]),
     "site: beyond Drupal's on site_db: TRIGGER"),
    (grants(extra_schema=[(GRANTEE, "site_db", "SELECT", "YES")]),
     "site: grant option on site_db"),
    (grants(user=[("FILE", "NO")]), "site: global privileges FILE"),
    (grants(tables=[(GRANTEE, "mysql")]), "site: table or column grants in mysql"),
], ids=["other-database", "extra-privilege", "grant-option", "global", "table-grant"])
def test_site_grants_beyond_its_own_database_fail(broken, found):
    assert found in mb.site_grant_problems("site", "site_db", *broken)


def test_site_grants_missing_drupal_privilege_fails():
    user, schema, tables = grants()
    schema = [r for r in schema if r[2] != "ALTER"]
    assert mb.site_grant_problems("site", "site_db", user, schema, tables) == [
        "site: missing on site_db: ALTER"]
