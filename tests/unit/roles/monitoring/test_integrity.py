"""roles/monitoring/integrity.py (issue 17): debsums weekly by its Debian default file, a
sandboxed daily unit turning debsums' and AIDE's findings into metrics, on every host."""
from __future__ import annotations

import pytest

from engine.resources import File, Service
from roles import registry
from roles.monitoring import integrity, updates


def _files(ctx):
    return {r.path: r for r in integrity.resources(ctx) if isinstance(r, File)}


def test_resources_debsums_default_weekly_as_lynis_reads_it(ctx_for) -> None:
    text = _files(ctx_for("web-villeparisis"))[integrity.DEBSUMS_DEFAULT].content
    # lynis PKGS-7370 reads `CRON_CHECK` with grep | awk -F=: one plain line.
    assert [line for line in text.splitlines() if "CRON_CHECK" in line
            and not line.startswith("#")] == ["CRON_CHECK=weekly"]


def test_resources_unit_sandboxed_runs_the_shipped_script(ctx_for) -> None:
    unit = _files(ctx_for("ops"))[f"/etc/systemd/system/{integrity.UNIT}.service"].content
    assert "ProtectSystem=strict" in unit and "PrivateNetwork=yes" in unit
    assert f"ReadWritePaths={integrity.STATE_DIR} {updates.TEXTFILE_DIR}" in unit
    assert f"{updates.CODE_DIR}/integrity.py --state {integrity.STATE_DIR}" in unit
    # the script itself is shipped by the updates role with every onhost/metrics module
    shipped = {r.path for r in updates.resources(ctx_for("ops")) if isinstance(r, File)}
    assert f"{updates.CODE_DIR}/integrity.py" in shipped


def test_resources_timer_daily_persistent_enabled(ctx_for) -> None:
    res = integrity.resources(ctx_for("backup-a"))
    timer = _files(ctx_for("backup-a"))[f"/etc/systemd/system/{integrity.UNIT}.timer"].content
    assert "OnCalendar=*-*-* 05:30:00" in timer and "Persistent=true" in timer
    assert Service(f"{integrity.UNIT}.timer", enabled=True, running=True) in res


@pytest.mark.parametrize("role", ["proxy", "web", "ops", "storage"])
def test_registry_every_host_role_runs_integrity(role: str) -> None:
    assert integrity.integrity in registry.ROLES[role]
