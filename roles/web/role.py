"""The web role: what a web host must look like for the sites it serves (one per host in the
model, R-HOST-2). A pure function of the host's context, for the deploy engine (engine/).

Beyond files, packages and services, four things are done by the helper shipped to
/usr/local/lib/hosting/web, each a Check (engine/primitives/check.py): a read-only `--check`
exiting 0 when there is nothing to do, 3 when its fix must run, so a second deploy changes
nothing: the site's secrets, its database and user, the MariaDB baseline, and the encrypted
private files. Code releases are not part of
`fab deploy` (a config fix must never ship new code): `fab web.release` does them.
"""
from __future__ import annotations

from pathlib import Path

from engine.resources import (
    Absent,
    Check,
    Directory,
    File,
    Handler,
    Packages,
    Resource,
    Service,
    User,
)
from engine.role import Desired, HostContext
from roles.decommissioned import guard as decommission_guard
from roles.mariadb import role as mariadb
from roles.web import nginx_listen, render
from roles.web.layout import HOMES, PHP_VERSION
from roles.web.site import WebSite, sites_on_host

PACKAGES = ("nginx", f"php{PHP_VERSION}-fpm", f"php{PHP_VERSION}-cli",
            f"php{PHP_VERSION}-mysql", f"php{PHP_VERSION}-opcache", f"php{PHP_VERSION}-gd",
            f"php{PHP_VERSION}-xml", f"php{PHP_VERSION}-mbstring", f"php{PHP_VERSION}-curl",
            f"php{PHP_VERSION}-intl", "gocryptfs", "fuse3", "curl",
            # `fab export` encrypts the site's archive on the host (backup.export, R-DATA-1).
            "age")
HELPER_SRC = Path(__file__).resolve().parents[2] / "onhost" / "web"
HELPER_DIR = "/usr/local/lib/hosting/web"
HELPER = ("/usr/bin/python3", HELPER_DIR)
OLD_PROBE_OK = "/var/lib/hosting/web/probe-ok"  # left by deploys before checks had exit codes
FPM = f"php{PHP_VERSION}-fpm.service"

DAEMON_RELOAD = Handler("web-daemon-reload", ("systemctl", "daemon-reload"))
RELOAD_FPM = Handler("reload-php-fpm", ("systemctl", "reload-or-restart", FPM))
RELOAD_NGINX = Handler("reload-nginx", ("systemctl", "reload-or-restart", "nginx.service"))
RESTART_NGINX = nginx_listen.RESTART
# Files the packages install that must not be live: Debian's default site (*:80) and its
# www pool (PHP as www-data, the nginx user). They appear during the first deploy's apt run,
# after the facts were read, so the apt run that installs the packages removes them at once
# (Packages.leftovers); the Absent resources below keep them away on later runs.
PACKAGE_LEFTOVERS = ("/etc/nginx/sites-enabled/default",
                     f"/etc/php/{PHP_VERSION}/fpm/pool.d/www.conf")
NGINX_TEST = "/usr/sbin/nginx -t -q -c {}"


def helper_files() -> list[Resource]:
    # Parents (/usr/local/lib/hosting, /var/lib/hosting) are shared with other roles (backup)
    # and created by the agent's mkdir; declaring them here too would be a duplicate resource.
    out: list[Resource] = [Directory(HELPER_DIR, 0o755)]
    for src in sorted(HELPER_SRC.glob("*.py")):
        out.append(File(f"{HELPER_DIR}/{src.name}", src.read_text(), 0o644))
    out += [Directory("/var/lib/hosting/web", 0o755), Directory(HOMES, 0o755),
            Absent(OLD_PROBE_OK)]
    return out


def site_users(site: WebSite) -> list[Resource]:
    lay = site.layout
    return [
        # The PHP user (pool, cron, DB credentials, writable dirs) and the code owner: two
        # users so that PHP can never rewrite its own code.
        User(lay.user, lay.home(lay.user)),
        User(lay.code_owner, lay.home(lay.code_owner)),
        # nginx reads code and public files through the site's group; it runs no PHP.
        User("www-data", "/var/www", groups=(lay.group,)),
    ]


def site_dirs(site: WebSite) -> list[Resource]:
    lay = site.layout
    u, g, code = lay.user, lay.group, lay.code_owner
    return [
        Directory(lay.root, 0o750, "root", g),
        Directory(lay.releases, 0o750, code, g),
        Directory(lay.incoming, 0o700),
        Directory(lay.shared, 0o750, "root", g),
        # setgid: files PHP creates stay readable by nginx through the site's group.
        Directory(lay.public_files, 0o2750, u, g),
        Directory(f"{lay.shared}/config", 0o750, "root", g),
        Directory(lay.config_sync, 0o750, u, g),
        Directory(lay.php_storage, 0o700, u, g),
        Directory(lay.tmp, 0o700, u, g),
        Directory(lay.sessions, 0o700, u, g),
        Directory(lay.etc, 0o750, "root", g),  # its parent /etc/hosting: shared, not declared
        # lay.private_files and lay.private_cipher: managed by the helper (a mounted
        # filesystem's root must not be "fixed" by a Directory resource).
    ]


def _check(name: str, args: tuple[str, ...], summary: str) -> Check:
    return Check(name, (*HELPER, *args, "--check"), (*HELPER, *args), summary)


def site_state(site: WebSite) -> list[Resource]:
    """Secrets, database and encrypted private files of one site: checks and their fixes
    (run in this order; the private files need the secrets' key and the mount unit, so
    `web` places that one after the unit files and services)."""
    lay = site.layout
    secrets = ("secrets", "--site", site.name, "--etc", lay.etc, "--database", site.database)
    db = ("database", "--site", site.name, "--database", site.database,
          "--creds", site.db_credentials)
    private = ("private", "--site", site.name, "--cipher", lay.private_cipher,
               "--plain", lay.private_files, "--passfile", lay.private_key,
               "--unit", lay.private_unit)
    n = site.name
    return [
        _check(f"web-secrets-{n}", secrets, f"{n}: generate missing secrets (DB password, "
               "hash salt, private files key) on the host, or fix their modes"),
        _check(f"web-database-{n}", db, f"{n}: create or repair database {site.database} and "
               f"its user (privileges on it only)"),
        _check(f"web-private-{n}", private, f"{n}: initialise or mount the encrypted private "
               "files (gocryptfs)"),
    ]


def site_files(site: WebSite, memory_mb: int = 0, sites_on_host: int = 1) -> list[Resource]:
    """`memory_mb`: the host's (SystemFacts.memory_mb), which sizes the PHP-FPM pool."""
    lay = site.layout
    units = ("web-daemon-reload",)
    return [
        File(lay.settings_local, render.settings_local(site), 0o640, "root", lay.group,
             validate=f"/usr/bin/php{PHP_VERSION} -l {{}}"),
        File(f"{lay.etc}/settings.default.php", render.default_settings(site), 0o640, "root",
             lay.group, validate=f"/usr/bin/php{PHP_VERSION} -l {{}}"),
        File(lay.fpm_pool, render.php_pool(site, memory_mb, sites_on_host), 0o644,
             validate=f"/usr/sbin/php-fpm{PHP_VERSION} -t -y {{}}",
             notify=(RELOAD_FPM.name,)),
        File(f"/etc/systemd/system/{lay.private_unit}.service", render.private_service(site),
             notify=units),
        File(f"/etc/systemd/system/{lay.cron_unit}.service", render.cron_service(site),
             notify=units),
        File(f"/etc/systemd/system/{lay.cron_unit}.timer", render.cron_timer(site),
             notify=units),
    ]


def site_services(site: WebSite) -> list[Resource]:
    lay = site.layout
    return [Service(f"{lay.private_unit}.service"),
            Service(f"{lay.cron_unit}.timer")]


def web(ctx: HostContext) -> Desired:
    sites = sites_on_host(ctx.inventory, ctx.host.name)
    if not sites:
        return Desired()
    if len(sites) > 1:
        # One nginx server per host with one site's root: the model gives each site its own
        # VM (R-HOST-2); serving two from one host would need a vhost per site here.
        raise ValueError(f"{ctx.host.name} holds {len(sites)} sites; one web host per site")
    site = sites[0]
    resources: list[Resource] = [decommission_guard(site.name),
                                 Packages(PACKAGES, leftovers=PACKAGE_LEFTOVERS),
                                 *helper_files()]
    db_resources, db_handlers = mariadb.resources(ctx)
    resources += db_resources
    handlers: list[Handler] = [DAEMON_RELOAD, *db_handlers]
    resources += site_users(site) + site_dirs(site)
    *state, private = site_state(site)
    resources += state
    resources += site_files(site, ctx.system.memory_mb, len(sites))
    # The proxy -> web hop (issue 19 item 6): this host's server certificate and the CA whose
    # client certificates it admits, when the deploy carries them.
    internal = render.InternalFiles()
    tls = ctx.settings.internal_tls
    if tls is not None:
        leaf = tls.server(ctx.host.name)
        resources += nginx_listen.internal_tls(tls.ca_pem, leaf.cert_pem, leaf.key_pem,
                                               internal.ca, internal.cert, internal.key,
                                               (RELOAD_NGINX.name,))
    nginx_conf = render.nginx_conf(site, internal=internal)
    resources += [
        File(f"/etc/php/{PHP_VERSION}/fpm/conf.d/90-hosting.ini", render.php_ini(),
             notify=(RELOAD_FPM.name,)),
        # Debian's www pool runs as www-data: no PHP may run as the nginx user.
        Absent(f"/etc/php/{PHP_VERSION}/fpm/pool.d/www.conf", notify=(RELOAD_FPM.name,)),
        File(f"/etc/systemd/system/{FPM}.d/50-hosting.conf", render.php_fpm_dropin(sites),
             notify=("web-daemon-reload",)),
        File("/etc/nginx/nginx.conf", nginx_conf, validate=NGINX_TEST,
             notify=(RELOAD_NGINX.name,)),
        Absent("/etc/nginx/sites-enabled/default"),
        Service(FPM),
        Service("nginx.service"),
        *site_services(site),
        private,  # after its mount unit is written and started
        *nginx_listen.resources(nginx_conf),
    ]
    handlers += [RELOAD_FPM, RELOAD_NGINX, RESTART_NGINX]
    return Desired(tuple(resources), tuple(handlers))

