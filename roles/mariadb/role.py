"""MariaDB server resources for a web host (the per-site database and user are in roles.web,
which knows the site). Server-side hardening follows dev-sec's mysql-baseline:
mysql-conf-03 (options, in 90-hosting.cnf), mysql-conf-04/05 (data dir mysql only),
mysql-conf-07/08 (config files root:mysql, not world-readable), mysql-db-03..08 (accounts and
test database, fixed by the helper's `db-baseline` step behind its check).
"""
from __future__ import annotations

from engine.render import render
from engine.resources import Check, Directory, File, Handler, Packages, Resource, Service
from engine.role import HostContext

PACKAGES = ("mariadb-server", "mariadb-client")
CNF = "/etc/mysql/mariadb.conf.d/90-hosting.cnf"
MAIN_CNF = "/etc/mysql/mariadb.cnf"
SECURE_FILE_PRIV = "/var/lib/mysql-files"
DATADIR = "/var/lib/mysql"
HELPER = ("/usr/bin/python3", "/usr/local/lib/hosting/web")
# Unknown or misspelt options make mariadbd exit non-zero before it would start.
VALIDATE = "/usr/sbin/mariadbd --defaults-file={} --help --verbose >/dev/null"

RESTART = Handler("restart-mariadb", ("systemctl", "restart", "mariadb.service"))


def resources(ctx: HostContext, buffer_pool_mb: int = 512) -> tuple[list[Resource], list[Handler]]:
    out: list[Resource] = [
        Packages(PACKAGES),
        # Debian leaves the data dir 0755: any local user could list the databases and their
        # tables (mysql-conf-04/05; tests/verify/test_mariadb.py checks it).
        Directory(DATADIR, 0o700, "mysql", "mysql"),
        Directory(SECURE_FILE_PRIV, 0o700, "mysql", "mysql"),
        # Debian's own content, made root:mysql 0640 (mysql-conf-07).
        File(MAIN_CNF, render("mariadb/mariadb.cnf.j2"), 0o640, "root", "mysql",
             notify=(RESTART.name,)),
        File(CNF, render("mariadb/hardening.cnf.j2", secure_file_priv=SECURE_FILE_PRIV,
                         innodb_buffer_pool_mb=buffer_pool_mb),
             0o640, "root", "mysql", validate=VALIDATE, notify=(RESTART.name,)),
        Service("mariadb.service"),
        Check("mariadb-baseline", (*HELPER, "db-baseline", "--check"), (*HELPER, "db-baseline"),
              "MariaDB: remove the test database and anonymous, passwordless, wildcard-host "
              "and remote-root accounts (mysql-baseline)"),
    ]
    return out, [RESTART]
