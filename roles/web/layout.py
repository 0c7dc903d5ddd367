"""Where one site's things live on its web host. Paths only, no I/O.

One place for them because the proxy, the backups (issue 6) and the tests all need the same
answers. Why two users per site: PHP must not be able to rewrite its own code (the code owner
is a different user from the one PHP runs as), and no site's PHP user can read another site's
tree (R-GDPR-4).
"""
from __future__ import annotations

from dataclasses import dataclass

SRV = "/srv"
HOMES = "/var/lib/hosting/web/home"  # the site users' own homes (Drush caches), outside /srv
ETC = "/etc/hosting"
PHP_VERSION = "8.4"  # Debian 13 (R-MNT-3); the model pins it too
MYSQL_SOCKET = "/run/mysqld/mysqld.sock"
# <site>.json: written by `fab decommission` on the web host (backup/decommission.py, the same
# path) before it deletes anything; while it is there the role refuses to set the site up.
TOMBSTONE_DIR = "/var/lib/hosting/decommissioned"


@dataclass(frozen=True)
class SiteLayout:
    site: str

    # -- users -----------------------------------------------------------------------------
    @property
    def user(self) -> str:
        """Runs PHP-FPM and cron; owns the writable dirs; reads the DB credentials."""
        return self.site

    @property
    def code_owner(self) -> str:
        """Owns the releases; nothing runs as it (no shell, no password)."""
        return f"{self.site}-code"

    @property
    def group(self) -> str:
        """Shared by the PHP user, the code owner and nginx (www-data): read access to the
        code and public files, nothing else."""
        return self.site

    def home(self, user: str) -> str:
        return f"{HOMES}/{user}"

    # -- tree under /srv/<site> -----------------------------------------------------------
    @property
    def root(self) -> str:
        return f"{SRV}/{self.site}"

    @property
    def releases(self) -> str:
        return f"{self.root}/releases"

    @property
    def current(self) -> str:
        return f"{self.root}/current"

    @property
    def incoming(self) -> str:
        return f"{self.root}/incoming"

    @property
    def shared(self) -> str:
        return f"{self.root}/shared"

    @property
    def public_files(self) -> str:
        return f"{self.shared}/files"

    @property
    def config_sync(self) -> str:
        return f"{self.shared}/config/sync"

    @property
    def php_storage(self) -> str:
        """Drupal's compiled Twig (PHP files): outside the web root, not public files."""
        return f"{self.shared}/php"

    @property
    def private_files(self) -> str:
        """gocryptfs plaintext view (R-GDPR-1); an empty root-only dir when not mounted."""
        return f"{self.root}/private"

    @property
    def private_cipher(self) -> str:
        return f"{self.root}/private.enc"

    @property
    def tmp(self) -> str:
        return f"{self.root}/tmp"

    @property
    def sessions(self) -> str:
        return f"{self.root}/sessions"

    @property
    def web_root(self) -> str:
        """nginx's root: through the symlink; nginx resolves it per request ($realpath_root)
        so PHP and OPcache always see one consistent release during a switch."""
        return f"{self.current}/web"

    # -- host config and secrets ----------------------------------------------------------
    @property
    def etc(self) -> str:
        return f"{ETC}/{self.site}"

    @property
    def db_credentials(self) -> str:
        """MariaDB option file: the inventory's secret reference points here."""
        return f"{self.etc}/db.cnf"

    @property
    def hash_salt(self) -> str:
        return f"{self.etc}/hash_salt"

    @property
    def private_key(self) -> str:
        """gocryptfs password file: root only; see docs/web-tier.md for its backup."""
        return f"{self.etc}/private.pass"

    @property
    def settings_local(self) -> str:
        """Rendered once per host, copied into each release as settings.local.php."""
        return f"{self.etc}/settings.local.php"

    # -- services ----------------------------------------------------------------------------
    @property
    def fpm_socket(self) -> str:
        return f"/run/php/{self.site}.sock"

    @property
    def fpm_pool(self) -> str:
        return f"/etc/php/{PHP_VERSION}/fpm/pool.d/{self.site}.conf"

    @property
    def cron_unit(self) -> str:
        return f"hosting-cron-{self.site}"

    @property
    def private_unit(self) -> str:
        return f"hosting-private-{self.site}"
