"""A site's secrets, generated on its web host and kept there (R-GDPR-4):

  db.cnf        MariaDB option file ([client] user/password): the site's PHP user only, 0400
  hash_salt     Drupal's hash salt, outside the web root: the site's PHP user only, 0400
  private.pass  gocryptfs password of the private files (R-GDPR-1): root only, 0400

Existing secrets are never rotated implicitly (that would lock the site out of its own
database or encrypted files); only their owner and mode are corrected.
"""
import os

from hw_util import fix_attrs, stat_problems, token, write_new

MYSQL_SOCKET = "/run/mysqld/mysqld.sock"


def db_cnf(user, database, password):
    # [mysql] holds the database: only the `mariadb` client reads it; mariadb-dump would
    # refuse an unknown `database` option in [client].
    return (f"# Generated on this host by the web role: the credentials of site {user}.\n"
            "# Use it with --defaults-extra-file; never put the password on a command line.\n"
            f"[client]\nuser = {user}\npassword = {password}\nsocket = {MYSQL_SOCKET}\n\n"
            f"[mysql]\ndatabase = {database}\n")


def wanted(site, etc, database):
    """(path, owner, group, mode, content factory) of each secret."""
    return [
        (os.path.join(etc, "db.cnf"), site, site, 0o400, lambda: db_cnf(site, database, token())),
        (os.path.join(etc, "hash_salt"), site, site, 0o400, lambda: token() + token() + "\n"),
        (os.path.join(etc, "private.pass"), "root", "root", 0o400, lambda: token() + "\n"),
    ]


def check(site, etc, database):
    problems = []
    for path, owner, group, mode, _make in wanted(site, etc, database):
        problems += stat_problems(path, owner, group, mode)
    return problems


def ensure(site, etc, database):
    done = []
    for path, owner, group, mode, make in wanted(site, etc, database):
        if not os.path.exists(path):
            write_new(path, make(), owner, group, mode)
            done.append(f"generated {path}")
        elif stat_problems(path, owner, group, mode):
            fix_attrs(path, owner, group, mode)
            done.append(f"fixed owner/mode of {path}")
    return done
