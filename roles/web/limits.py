"""Sizes derived from the model, pure: PHP-FPM pool size and the cron timer's schedule."""
from __future__ import annotations

from dataclasses import dataclass

from roles.web.site import Limits

# Memory PHP may use on a web host, in MB. One site per host (R-HOST-2), so the pool gets
# most of it; MariaDB and the page cache get the rest. The smallest flavor (b3-8) has 8 GB.
PHP_MEMORY_BUDGET_MB = 3072


@dataclass(frozen=True)
class PoolSize:
    max_children: int
    start_servers: int
    min_spare: int
    max_spare: int


def pool_size(limits: Limits, budget_mb: int = PHP_MEMORY_BUDGET_MB) -> PoolSize:
    """As many workers as fit in the budget if every one used its whole memory_limit (the
    worst case must not swap), between 4 and 64."""
    n = max(4, min(64, budget_mb // max(1, limits.memory_mb)))
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
