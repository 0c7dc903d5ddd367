"""MariaDB on a web host: one database and one user per site with rights on that database
only (R-GDPR-4), and the server-side controls of dev-sec's mysql-baseline (mysql-db-03..08).

Every statement goes to `mariadb` on stdin, as root over the Unix socket (root logs in by
unix_socket only): a password read from the site's option file is written into that stdin,
never into an argument list.
"""
import re

from hw_util import HelperError, read_option_file, run

# What Drupal needs on its own database (Drupal's INSTALL.mysql.txt), nothing more.
SITE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX", "ALTER",
                   "CREATE TEMPORARY TABLES", "LOCK TABLES")
SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
# Never dropped: root (unix_socket, local only) and the locked account owning MariaDB's
# system views (dropping it breaks mysql.user itself).
ADMIN_ACCOUNTS = {("root", "localhost"), ("mariadb.sys", "localhost")}


def _ident(name):
    if not SAFE.match(name):
        raise HelperError(f"unsafe SQL identifier {name!r}")
    return name


def sql(statements, *, check=True):
    """Run SQL as root; return rows (tab-separated fields)."""
    proc = run(["mariadb", "--batch", "--skip-column-names", "--protocol=socket"],
               input=statements, check=check)
    return [line.split("\t") for line in proc.stdout.splitlines()]


def _grants(user):
    rows = sql(f"SHOW GRANTS FOR '{_ident(user)}'@'localhost';\n", check=False)
    return [r[0] for r in rows]


def parse_grants(lines):
    """{scope: set of privileges} from SHOW GRANTS output (scope "*.*" or "`db`.*")."""
    out = {}
    for line in lines:
        m = re.match(r"GRANT (.+?) ON (\S+) TO ", line)
        if not m:
            continue
        privs = {p.strip() for p in m.group(1).split(",")}
        if " WITH GRANT OPTION" in line:
            privs.add("GRANT OPTION")
        out.setdefault(m.group(2).replace("`", ""), set()).update(privs)
    return out


def grant_problems(user, database, lines):
    grants = parse_grants(lines)
    problems = []
    if not lines:
        return [f"user {user}@localhost does not exist"]
    extra_global = grants.get("*.*", {"USAGE"}) - {"USAGE"}
    if extra_global:
        problems.append("{} has global privileges {}".format(user, ", ".join(sorted(extra_global))))
    mine = grants.get(f"{database}.*", set())
    if mine != set(SITE_PRIVILEGES):
        problems.append("{}'s privileges on {} are {}".format(user, database,
                                                          ", ".join(sorted(mine)) or "none"))
    others = sorted(s for s in grants if s not in ("*.*", f"{database}.*"))
    if others:
        problems.append("{} has grants outside its database: {}".format(user, ", ".join(others)))
    return problems


def _login_works(creds):
    proc = run(["mariadb", "--defaults-extra-file=" + creds, "--batch", "--skip-column-names",
                "--protocol=socket"], input="SELECT CURRENT_USER();\n", check=False)
    return proc.returncode == 0


def check_site(user, database, creds):
    _ident(user), _ident(database)
    try:
        rows = sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                   f"WHERE SCHEMA_NAME='{database}';\n"
                   f"SELECT Host FROM mysql.user WHERE User='{user}';\n")
    except HelperError as exc:
        return [f"MariaDB is not reachable: {exc}"]
    flat = [r[0] for r in rows]
    problems = []
    if database not in flat:
        problems.append(f"database {database} is missing")
    hosts = [h for h in flat if h != database]
    if [h for h in hosts if h != "localhost"]:
        problems.append(f"user {user} exists for other hosts than localhost: {hosts}")
    problems += grant_problems(user, database, _grants(user))
    if not problems and not _login_works(creds):
        problems.append(f"user {user} cannot log in with {creds}")
    return problems


def ensure_site(user, database, creds):
    _ident(user), _ident(database)
    password = read_option_file(creds)["password"]
    if not SAFE.match(password):
        raise HelperError(f"{creds}: the password has characters this role never generates")
    stray = [r[0] for r in sql(f"SELECT Host FROM mysql.user WHERE User='{user}' AND "
                               "Host<>'localhost';\n")]
    statements = [
        f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 "
        "COLLATE utf8mb4_general_ci;",
        f"CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{password}';",
        f"ALTER USER '{user}'@'localhost' IDENTIFIED BY '{password}';",
        f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{user}'@'localhost';",
        f"GRANT {', '.join(SITE_PRIVILEGES)} ON `{database}`.* TO '{user}'@'localhost';",
    ]
    statements += ["DROP USER '{}'@'{}';".format(user, h.replace("'", "''")) for h in stray]
    sql("\n".join(statements) + "\nFLUSH PRIVILEGES;\n")
    problems = check_site(user, database, creds)
    if problems:
        raise HelperError(f"database of {user} still wrong after repair: "
                          f"{'; '.join(problems)}")
    return [f"database {database} and user {user}@localhost (privileges on {database} only)"]


# --- server baseline (dev-sec mysql-baseline, server side) ----------------------------------------

# An account anyone can log in to: empty password, a password plugin, not locked, not a role
# (roles have an empty host). Read from global_priv: MariaDB keeps "account_locked" there only.
NO_PASSWORD = ("IFNULL(JSON_VALUE(Priv,'$.authentication_string'),'')='' "
               "AND IFNULL(JSON_VALUE(Priv,'$.plugin'),'') IN "
               "('','mysql_native_password','ed25519') "
               "AND IFNULL(JSON_EXTRACT(Priv,'$.account_locked'),'false')<>'true' "
               "AND Host<>''")

BASELINE_QUERIES = (
    ("mysql-db-03", "a test database exists",
     "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='test' "
     "OR SCHEMA_NAME LIKE 'test\\\\_%';"),
    ("mysql-db-04", "anonymous accounts exist",
     "SELECT CONCAT(User,'@',Host) FROM mysql.user WHERE User='';"),
    ("mysql-db-05", "unlocked accounts without a password",
     f"SELECT CONCAT(User,'@',Host) FROM mysql.global_priv WHERE {NO_PASSWORD};"),
    ("mysql-db-06", "accounts other than root with the grant option",
     "SELECT CONCAT(User,'@',Host) FROM mysql.user WHERE Grant_priv='Y' AND User<>'root';"),
    ("mysql-db-07", "accounts for any host ('%')",
     "SELECT CONCAT(User,'@',Host) FROM mysql.user WHERE Host='%';"),
    ("mysql-db-08", "root reachable from elsewhere than localhost",
     "SELECT CONCAT(User,'@',Host) FROM mysql.user WHERE User='root' "
     "AND Host NOT IN ('localhost','127.0.0.1','::1');"),
)


def check_baseline():
    problems = []
    for control, what, query in BASELINE_QUERIES:
        try:
            rows = sql(query + "\n")
        except HelperError as exc:
            return [f"MariaDB is not reachable: {exc}"]
        if rows:
            problems.append("{}: {}: {}".format(control, what, ", ".join(r[0] for r in rows)))
    return problems


def _accounts(query):
    return [tuple(r) for r in sql(query + "\n")]


def ensure_baseline():
    done = []
    statements = ["DROP DATABASE IF EXISTS test;",
                  "DELETE FROM mysql.db WHERE Db='test' OR Db LIKE 'test\\\\_%';"]
    doomed = set(_accounts("SELECT User, Host FROM mysql.user WHERE User='' OR Host='%' OR "
                           "(User='root' AND Host NOT IN ('localhost','127.0.0.1','::1')) OR "
                           "(Grant_priv='Y' AND User<>'root')"))
    doomed |= set(_accounts(f"SELECT User, Host FROM mysql.global_priv WHERE {NO_PASSWORD}"))
    doomed -= ADMIN_ACCOUNTS
    for user, host in sorted(doomed):
        statements.append("DROP USER '{}'@'{}';".format(user.replace("'", "''"),
                                                    host.replace("'", "''")))
        done.append(f"dropped account {user}@{host}")
    sql("\n".join(statements) + "\nFLUSH PRIVILEGES;\n")
    left = check_baseline()
    if left:
        raise HelperError("MariaDB baseline still violated: {}".format("; ".join(left)))
    return done or ["dropped the test database"]
