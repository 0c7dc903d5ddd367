"""Sizes derived from the model and the host, pure: PHP-FPM pool size and the cron timer's
schedule."""
from __future__ import annotations

from dataclasses import dataclass

from roles.web.site import Limits

# What a web host's memory holds besides PHP's workers, in MB (docs/web-tier.md, "PHP-FPM"):
# Debian, sshd, the deploy agent, nginx, the node exporter and the nightly restic backup
# (hundreds of MB at its peak)...
SYSTEM_RESERVE_MB = 1024
# ... and MariaDB: its InnoDB buffer pool (roles/mariadb: 512 MB) plus per-connection buffers.
MARIADB_RESERVE_MB = 512 + 512
# Of the rest, PHP gets three quarters; the last quarter stays page cache (code and opcache
# file reads, public files nginx sends, InnoDB pages beyond the pool).
PHP_SHARE_NUM, PHP_SHARE_DEN = 3, 4
# MemTotal moves by a few MB with a kernel update: sizing from whole 256 MB steps keeps the pool
# (and so a second `fab deploy`) unchanged on a given host.
MEMORY_STEP_MB = 256
# Floor: fewer workers and one slow request (an upload, an export) holds a quarter of the site;
# also what a host whose memory is unknown gets. Ceiling: Drupal pages are CPU-bound, and past
# 64 workers per site requests only queue on the vCPUs instead of in FPM's backlog.
MIN_CHILDREN, MAX_CHILDREN = 4, 64


@dataclass(frozen=True)
class PoolSize:
    max_children: int
    start_servers: int
    min_spare: int
    max_spare: int


def php_budget_mb(memory_mb: int, sites_on_host: int = 1) -> int:
    """The memory one site's PHP workers may use on a host with `memory_mb` (MemTotal) that
    serves `sites_on_host` sites (one per web VM in the model, R-HOST-2); 0 when unknown."""
    if memory_mb <= 0:
        return 0
    usable = (memory_mb // MEMORY_STEP_MB * MEMORY_STEP_MB
              - SYSTEM_RESERVE_MB - MARIADB_RESERVE_MB)
    return max(0, usable * PHP_SHARE_NUM // PHP_SHARE_DEN // max(1, sites_on_host))


def pool_size(limits: Limits, memory_mb: int = 0, sites_on_host: int = 1) -> PoolSize:
    """As many workers as fit in the site's share of the host's memory if every one used its
    whole memory_limit (the worst case must not swap), between MIN_CHILDREN and MAX_CHILDREN.
    `memory_mb` 0 (unknown: the engine's first, identity-only build) gives the floor."""
    budget = php_budget_mb(memory_mb, sites_on_host)
    n = max(MIN_CHILDREN, min(MAX_CHILDREN, budget // max(1, limits.memory_mb)))
    return PoolSize(n, max(2, n // 4), max(1, n // 8), max(2, n // 2))


def timer_schedule(every_minutes: int) -> tuple[str, ...]:
    """systemd [Timer] lines for "every N minutes": wall-clock aligned when N divides an hour
    or a day (predictable for people reading logs), else monotonic."""
    if not 1 <= every_minutes <= 1440:
        raise ValueError(f"cron every {every_minutes} minutes: must be 1..1440")
    if 60 % every_minutes == 0:
        return (f"OnCalendar=*-*-* *:00/{every_minutes}:00",)
    if every_minutes % 60 == 0 and 24 % (every_minutes // 60) == 0:
        return (f"OnCalendar=*-*-* 00/{every_minutes // 60}:00:00",)
    return ("OnBootSec=5min", f"OnUnitActiveSec={every_minutes}min")
