"""The checks: collected facts -> evidence, pure functions (no SSH, no clock of their own).

Each check reads the facts its collector gathered (audit/collect.py) and returns one or more
Evidence items (pass / fail / manual). A collector that could not run (no monitoring on ops,
no restore recorded, a host unreachable) gives `manual` with the reason, never a crash.

One module per family (common, platform, hosts, backups, operations); this package re-exports
them so the clause table reads `checks.<name>`.
"""
from __future__ import annotations

from audit.checks.backups import (  # noqa: F401
    content,
    monthly,
    newest,
    no_logs,
    offsite,
    oldest,
    repository_checks,
    weekly,
)
from audit.checks.common import (  # noqa: F401
    CERT_DAYS_MIN,
    KEEP_DAYS_MAX,
    LOG_PATH,
    SITE_PRIVILEGES,
    STALE_HOURS,
    SYSTEM_ACCOUNTS,
    TIERS,
    WEEKLY_DAYS_MAX,
    Context,
    Fact,
    age_text,
    host_facts,
    parse_time,
    unavailable,
)
from audit.checks.hosts import (  # noqa: F401
    HARMLESS,
    accepted_openings,
    acme_principal,
    backup_principal,
    ca_register,
    db_grants,
    encrypted_private_files,
    firewall,
    grant_problems,
    opening_allowed,
    parse_grants,
    sshd_access,
    updates,
    versions,
    who_logs_in,
)
from audit.checks.operations import (  # noqa: F401
    MONITORED,
    UPDATE_EVERY_DAYS,
    UPDATE_WINDOW_MAX,
    alert_rules,
    incidents,
    monitoring,
    restores,
    update_qualified,
    update_window,
    verify_cases,
)
from audit.checks.platform import (  # noqa: F401
    regions,
    sites_listed,
    stacks,
    tls_certificate,
    tls_sites,
    topology,
)
