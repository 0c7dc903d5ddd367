"""MariaDB on the web hosts: dev-sec mysql-baseline's controls, by SQL and from the files,
plus one database and one account per site with rights on its own database only (R-GDPR-4,
R-INC-3: who can read what).

SQL runs as root over the Unix socket (`sudo mariadb --protocol=socket`: root logs in by
unix_socket, no password exists to pass); a site's own login reads its option file
(`--defaults-extra-file`), so no password is ever on a command line. The mysql-db-* controls
are written from dev-sec's control texts (tests/verify/mysql_baseline.py), independently of the
deploy's fixer (onhost/web/hw_db.py, issue 17): this suite reads its own rows and grades them
itself. Every mysql-db control and mysql-conf-06 is ported; the adaptations to MariaDB on
Debian 13 are said at each one.
"""
from __future__ import annotations

import shlex
from typing import Any

import pytest

from . import mysql_baseline as mb

pytestmark = pytest.mark.roles("web")
SYSTEM_SCHEMAS = {"information_schema", "mysql", "performance_schema", "sys"}
# Accounts MariaDB itself needs: root (unix_socket, local) and the locked owner of its views.
SYSTEM_ACCOUNTS = {("root", "localhost"), ("mariadb.sys", "localhost")}


def sql(host: Any, query: str) -> list[list[str]]:
    """Rows of `query`, run as root over the Unix socket."""
    out = host.check_output(f"mariadb --protocol=socket -N -B -e {shlex.quote(query)}")
    return [line.split("\t") for line in out.splitlines() if line]


def variable(host: Any, name: str) -> str:
    rows = sql(host, f"SELECT @@GLOBAL.{name}")
    return rows[0][0] if rows else ""  # an empty value prints an empty line


def sites_of(host_entry: dict[str, Any], inventory: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in inventory["sites"] if s["host"] == host_entry["name"]]


def credentials_path(inventory: dict[str, Any], site: str) -> str:
    """Where the site's DB option file is: the inventory's secret reference
    (`host-file:<host>:<path>`), else the roles' default."""
    ref = inventory.get("secrets", {}).get(f"db_password_{site}", {}).get("ref", "")
    return ref.split(":", 2)[2] if ref.startswith("host-file:") else \
        f"/etc/hosting/{site}/db.cnf"


def users(host: Any) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in sql(host, "SELECT User, Host FROM mysql.user")]


def version(host: Any) -> str:
    return sql(host, "SELECT VERSION()")[0][0]


def test_mysql_db_01_the_distributions_supported_build_runs(host):
    package = host.check_output("dpkg-query -W -f '${Version}' mariadb-server")
    problems = mb.db_01_problems(version(host), package)
    assert not problems, problems


def test_mysql_db_02_version_5_or_higher(host):
    assert not mb.db_02_problems(version(host))


def test_mysql_db_03_no_test_database(host):
    problems = mb.db_03_problems(r[0] for r in sql(host, "SHOW DATABASES"))
    assert not problems, problems


def test_mysql_db_04_no_anonymous_account(host):
    problems = mb.db_04_problems(users(host))
    assert not problems, problems


def test_mysql_db_05_no_account_without_a_password(host):
    rows = [(r[0], r[1], r[2]) for r in sql(host, "SELECT User, Host, Priv FROM mysql.global_priv")]
    problems = mb.db_05_problems(rows)
    assert not problems, problems


def test_mysql_db_06_no_grant_option_but_root(host):
    problems = mb.db_06_problems(
        [(r[0], r[1], r[2]) for r in sql(host, "SELECT User, Host, Grant_priv FROM mysql.user")],
        [(r[0], r[1], r[2]) for r in sql(host, "SELECT User, Host, Db FROM mysql.db "
                                                "WHERE Grant_priv = 'Y'")])
    assert not problems, problems


def test_mysql_db_07_no_wildcard_hosts(host):
    problems = mb.db_07_problems(users(host))
    assert not problems, problems


def test_mysql_db_08_root_from_localhost_only(host):
    problems = mb.db_08_problems(users(host))
    assert not problems, problems


def test_mysql_conf_01_service_running_and_enabled(host):
    service = host.service("mariadb")
    assert service.is_running and service.is_enabled


def test_mysql_conf_02_single_server_process(host):
    assert host.check_output("pgrep -c -x mariadbd") == "1"


def test_mysql_conf_03_bound_to_localhost_only(host):
    # Only local clients (the site's PHP): no TCP but loopback, whatever the config says.
    assert variable(host, "bind_address") in ("127.0.0.1", "::1", "localhost")
    local = host.check_output("ss -Hltn 'sport = :3306' | awk '{print $4}'").split()
    assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::1]") for a in local), local


def test_mysql_conf_03_no_local_infile(host):
    assert variable(host, "local_infile") == "0"


def test_mysql_conf_03_skip_name_resolve(host):
    assert variable(host, "skip_name_resolve") == "1"


def test_mysql_conf_03_no_symbolic_links(host):
    assert variable(host, "have_symlink") == "DISABLED"


def test_mysql_conf_03_secure_file_priv_is_a_private_directory(host):
    path = variable(host, "secure_file_priv")
    assert path not in ("", "NULL", "/")
    d = host.file(path)
    assert d.is_directory and d.user == "mysql" and d.mode & 0o007 == 0


def test_mysql_conf_03_skip_show_database(host):
    assert variable(host, "skip_show_database") == "1"


def test_mysql_conf_04_05_data_dir_owned_by_mysql_closed_to_others(host):
    datadir = variable(host, "datadir").rstrip("/")
    for path in (datadir, f"{datadir}/ibdata1"):
        f = host.file(path)
        assert (f.user, f.group) == ("mysql", "mysql"), path
        assert f.mode & 0o007 == 0, f"{path} {oct(f.mode)}"


def test_mysql_conf_06_error_log_closed_to_others(host):
    log_error = variable(host, "log_error")
    stat = None
    if log_error and log_error != "stderr":
        path = log_error if log_error.startswith("/") else \
            f"{variable(host, 'datadir').rstrip('/')}/{log_error}"
        f = host.file(path)
        stat = (f.user, f.group, f.mode) if f.exists else None
    unit = dict(line.split("=", 1) for line in host.check_output(
        "systemctl show mariadb -p StandardError -p StandardOutput").splitlines())
    exposed = host.check_output("find /var/log/journal /run/log/journal -type f -perm -o=r "
                                "2>/dev/null || true").split()
    problems = mb.conf_06_problems(log_error, stat, unit.get("StandardError", ""),
                                   unit.get("StandardOutput", ""), exposed)
    assert not problems, problems


def test_mysql_conf_07_08_config_files_root_mysql_not_world_readable(host):
    for path in ("/etc/mysql/my.cnf", "/etc/mysql/mariadb.cnf",
                 "/etc/mysql/mariadb.conf.d/90-hosting.cnf"):
        f = host.file(path)
        target = host.file(f.linked_to) if f.is_symlink else f
        assert (target.user, target.group) == ("root", "mysql"), path
        assert target.mode & 0o007 == 0, f"{path} {oct(target.mode)}"


def test_mysql_conf_09_no_mysql_pwd_in_any_environment(host):
    # -z: one environment entry per record, so sudo's SUDO_COMMAND (this very command line)
    # does not count.
    found = host.run("grep -lsaz '^MYSQL_PWD=' /proc/[0-9]*/environ")
    assert found.stdout.strip() == ""


def test_mariadb_only_the_sites_databases_exist(host, host_entry, inventory):
    # One database per site, nothing left over from another site or a test (R-GDPR-8).
    schemas = {r[0] for r in sql(host, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}
    assert schemas - SYSTEM_SCHEMAS == {s["database"] for s in sites_of(host_entry, inventory)}


def test_mariadb_accounts_are_root_and_the_sites_users_only(host, host_entry, inventory):
    # R-INC-3: who can log in to the database; R-GDPR-4: one account per site, local only.
    accounts = {(r[0], r[1]) for r in sql(host, "SELECT User, Host FROM mysql.user")}
    sites = {(s["name"], "localhost") for s in sites_of(host_entry, inventory)}
    assert accounts - SYSTEM_ACCOUNTS == sites


def test_mariadb_site_user_has_privileges_on_its_own_database_only(host, host_entry,
                                                                   inventory):
    # From information_schema, not SHOW GRANTS: global, database, table and column grants.
    user_privs = [tuple(r) for r in sql(
        host, "SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE "
              "FROM information_schema.USER_PRIVILEGES")]
    schema_privs = [tuple(r) for r in sql(
        host, "SELECT GRANTEE, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE "
              "FROM information_schema.SCHEMA_PRIVILEGES")]
    table_privs = [tuple(r) for r in sql(
        host, "SELECT GRANTEE, TABLE_SCHEMA FROM information_schema.TABLE_PRIVILEGES UNION "
              "SELECT GRANTEE, TABLE_SCHEMA FROM information_schema.COLUMN_PRIVILEGES")]
    problems = []
    for site in sites_of(host_entry, inventory):
        problems += mb.site_grant_problems(site["name"], site["database"], user_privs,
                                           schema_privs, table_privs)
    assert not problems, problems


def test_mariadb_site_login_sees_its_own_database_only(host, host_entry, inventory):
    # As the site's PHP would: its own Unix user, its option file, the socket.
    for site in sites_of(host_entry, inventory):
        out = host.check_output(
            f"runuser -u {shlex.quote(site['name'])} -- mariadb --defaults-extra-file="
            f"{shlex.quote(credentials_path(inventory, site['name']))} --protocol=socket "
            "-N -B -e 'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA'")
        assert set(out.split()) == {"information_schema", site["database"]}


def test_mariadb_site_credentials_readable_by_the_site_user_only(host, host_entry, inventory):
    for site in sites_of(host_entry, inventory):
        f = host.file(credentials_path(inventory, site["name"]))
        assert f.is_file and f.user == site["name"], f"{f.path} {f.user}"
        assert f.mode & 0o077 == 0, f"{f.path} {oct(f.mode)}"
