"""roles/monitoring/updates.py (issue 13, R-INC-2): the pending security updates' check on
every host: the stdlib scripts shipped as they are, a sandboxed read-only unit, an hourly timer."""
from __future__ import annotations

import pytest

from engine.resources import File, Service
from roles import registry
from roles.monitoring import updates


def _files(ctx):
    return {r.path: r for r in updates.resources(ctx) if isinstance(r, File)}


def test_resources_ship_the_scripts_unchanged(ctx_for) -> None:
    files = _files(ctx_for("ops"))
    for name in ("apt_security.py", "textfile.py"):
        assert files[f"{updates.CODE_DIR}/{name}"].content == (updates.SOURCE / name).read_text()


def test_resources_unit_read_only_sandboxed_writes_only_state_and_textfile(ctx_for) -> None:
    unit = _files(ctx_for("ops"))[f"/etc/systemd/system/{updates.UNIT}.service"].content
    assert "ProtectSystem=strict" in unit and "PrivateNetwork=yes" in unit
    assert f"ReadWritePaths={updates.STATE_DIR} {updates.TEXTFILE_DIR}" in unit
    assert "apt_security.py --state" in unit


def test_resources_timer_hourly_enabled(ctx_for) -> None:
    res = updates.resources(ctx_for("ops"))
    timer = {r.path: r for r in res if isinstance(r, File)}[
        f"/etc/systemd/system/{updates.UNIT}.timer"].content
    assert "OnCalendar=hourly" in timer and "Persistent=true" in timer
    assert Service(f"{updates.UNIT}.timer", enabled=True, running=True) in res


@pytest.mark.parametrize("role", ["proxy", "web", "ops", "storage"])
def test_registry_every_host_role_runs_updates(role: str) -> None:
    assert updates.updates in registry.ROLES[role]


@pytest.mark.parametrize("host", ["proxy", "web-villeparisis", "ops", "backup-a"])
def test_registry_desired_every_host_declares_each_resource_once(ctx_for, host: str) -> None:
    desired = registry.desired(ctx_for(host))
    keys = [r.key for r in desired.resources]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []
