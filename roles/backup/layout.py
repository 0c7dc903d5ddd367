"""Where the backups of one site live, on its web host and on the storage servers. Paths only.

One place for them: the roles, the runner's configuration, `fab restore`, `fab backup.status`
and the tests all need the same answers.
"""
from __future__ import annotations

from dataclasses import dataclass

RUNNER_DIR = "/usr/local/lib/hosting/backup-runner"  # holds the `backup` package (stdlib only)
PYTHON = "/usr/bin/python3"
CONFIG_DIR = "/etc/hosting/backup"  # web host: runner config, password, SSH identity (0700)
STORAGE_CONFIG_DIR = "/etc/hosting/backup-storage"  # storage server: per-site rotation config
STATE_ROOT = "/var/lib/hosting/backup"  # status.json + runs.jsonl per site (R-INC-4)
CACHE_DIR = "/var/cache/hosting/backup"  # restic's cache (safe to delete)
LOCAL_REPOS = "/var/backups/hosting"  # web host: the local repository of each site (R-BKP-1)
STORAGE_ROOT = "/srv/backups"  # storage server: one directory per site (R-BKP-2, R-BKP-3)


@dataclass(frozen=True)
class BackupLayout:
    site: str

    # -- web host ----------------------------------------------------------------------------
    @property
    def config(self) -> str:
        return f"{CONFIG_DIR}/{self.site}.json"

    @property
    def password(self) -> str:
        return f"{CONFIG_DIR}/{self.site}.password"

    @property
    def ssh_key(self) -> str:
        return f"{CONFIG_DIR}/{self.site}.id_ed25519"

    @property
    def ssh_pub(self) -> str:
        return f"{self.ssh_key}.pub"

    @property
    def ssh_cert(self) -> str:
        return f"{self.ssh_key}-cert.pub"

    @property
    def ssh_config(self) -> str:
        return f"{CONFIG_DIR}/{self.site}.ssh_config"

    @property
    def known_hosts(self) -> str:
        return f"{CONFIG_DIR}/known_hosts"

    @property
    def local_repo(self) -> str:
        return f"{LOCAL_REPOS}/{self.site}/restic"

    @property
    def state(self) -> str:
        return f"{STATE_ROOT}/{self.site}"

    @property
    def lock(self) -> str:
        return f"{STATE_ROOT}/{self.site}/run.lock"

    @property
    def unit(self) -> str:
        return f"hosting-backup-{self.site}"

    # -- storage servers -----------------------------------------------------------------------
    @property
    def principal(self) -> str:
        """The certificate principal of the site's backup pushes: nothing else logs in with it."""
        return f"backup-{self.site}"

    @property
    def storage_user(self) -> str:
        """The Unix user owning the site's repository on a storage server (one per site:
        one site's web host can never reach another site's backups, R-GDPR-4)."""
        return f"backup-{self.site}"

    @property
    def storage_home(self) -> str:
        return f"{STORAGE_ROOT}/{self.site}"

    @property
    def storage_repo(self) -> str:
        return f"{STORAGE_ROOT}/{self.site}/repo"

    @property
    def storage_password(self) -> str:
        return f"{STORAGE_CONFIG_DIR}/{self.site}.password"

    @property
    def storage_config(self) -> str:
        return f"{STORAGE_CONFIG_DIR}/{self.site}.json"

    @property
    def storage_state(self) -> str:
        return f"{STATE_ROOT}/storage-{self.site}"

    @property
    def storage_unit(self) -> str:
        return f"hosting-backup-rotate-{self.site}"

    def forced_command(self) -> str:
        """What sshd runs for the principal, whatever the client asks: the site's repository
        served append-only (R-BKP-7) behind the site's space limit on that server (backup.serve,
        R-GDPR-4). The same string goes into the certificate's force-command and the storage
        server's principals file (sshd requires them equal)."""
        return (f"/usr/bin/env PYTHONPATH={RUNNER_DIR} {PYTHON} -m backup.serve "
                f"--site {self.site}")
