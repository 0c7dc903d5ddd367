"""MariaDB on the web hosts: dev-sec mysql-baseline's controls, by SQL and from the files,
plus one database and one account per site with rights on its own database only (R-GDPR-4,
R-INC-3: who can read what).

SQL runs as root over the Unix socket (`sudo mariadb --protocol=socket`: root logs in by
unix_socket, no password exists to pass); a site's own login reads its option file
(`--defaults-extra-file`), so no password is ever on a command line. The mysql-db-* queries are
the deploy's own (onhost/web/hw_db.py BASELINE_QUERIES): the check that repairs a host
and the audit that grades it cannot drift apart.
Not ported: mysql-db-01/02 (version: Debian 13's MariaDB 11.8, R-MNT-3), mysql-conf-06 (the
error log goes to journald on Debian).
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "onhost" / "web"))  # the host helper's own imports
from hw_db import BASELINE_QUERIES, SITE_PRIVILEGES, parse_grants  # noqa: E402

pytestmark = pytest.mark.roles("web")
SYSTEM_SCHEMAS = {"information_schema", "mysql", "performance_schema", "sys"}
# Accounts MariaDB itself needs: root (unix_socket, local) and the locked owner of its views.
SYSTEM_ACCOUNTS = {("root", "localhost"), ("mariadb.sys", "localhost")}


def sql(host: Any, query: str) -> list[list[str]]:
    """Rows of `query`, run as root over the Unix socket."""
    out = host.check_output(f"mariadb --protocol=socket -N -B -e {shlex.quote(query)}")
    return [line.split("\t") for line in out.splitlines() if line]


def variable(host: Any, name: str) -> str:
    return sql(host, f"SELECT @@GLOBAL.{name}")[0][0]


def sites_of(host_entry: dict[str, Any], inventory: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in inventory["sites"] if s["host"] == host_entry["name"]]


def credentials_path(inventory: dict[str, Any], site: str) -> str:
    """Where the site's DB option file is: the inventory's secret reference
    (`host-file:<host>:<path>`), else the roles' default."""
    ref = inventory.get("secrets", {}).get(f"db_password_{site}", {}).get("ref", "")
    return ref.split(":", 2)[2] if ref.startswith("host-file:") else \
        f"/etc/hosting/{site}/db.cnf"


@pytest.mark.parametrize("control,what,query", BASELINE_QUERIES,
                         ids=[c[0] for c in BASELINE_QUERIES])
def test_mysql_db_baseline_query_returns_no_rows(host, control, what, query):
    rows = sql(host, query)
    assert rows == [], f"{control}: {what}: {', '.join(r[0] for r in rows)}"


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
    for site in sites_of(host_entry, inventory):
        lines = [r[0] for r in sql(host, f"SHOW GRANTS FOR '{site['name']}'@'localhost'")]
        grants = parse_grants(lines)
        assert set(grants) == {"*.*", f"{site['database']}.*"}, lines
        assert grants["*.*"] == {"USAGE"}, lines
        mine = grants[f"{site['database']}.*"]
        assert mine <= set(SITE_PRIVILEGES) and "GRANT OPTION" not in mine, lines


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
