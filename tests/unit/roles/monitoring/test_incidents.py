"""The incident record's role (roles/monitoring/incidents.py, R-INC-4): the receiver as an
unprivileged, loopback-only service, its log kept at least a year, its code the repo's."""
from __future__ import annotations

import re

from engine.resources import Directory, File, Service, User
from roles.monitoring import incidents


def _by_path(resources):
    return {r.path: r for r in resources if isinstance(r, File | Directory)}


def test_resources_ops_receiver_runs_unprivileged_on_loopback(ctx_for) -> None:
    res = incidents.resources(ctx_for("ops"))
    unit = _by_path(res)[f"/etc/systemd/system/{incidents.UNIT}"].content
    assert f"User={incidents.USER}" in unit and "User=root" not in unit
    assert "--listen 127.0.0.1:9099" in unit
    assert "Type=notify" in unit  # restart returns once the port is bound
    assert "ProtectSystem=strict" in unit and f"ReadWritePaths={incidents.LOG_DIR}" in unit
    assert any(isinstance(r, User) and r.name == incidents.USER for r in res)
    assert Service(incidents.UNIT, enabled=True, running=True) in res


def test_resources_ops_log_directory_owned_by_service_user_only(ctx_for) -> None:
    d = _by_path(incidents.resources(ctx_for("ops")))[incidents.LOG_DIR]
    assert (d.owner, d.group, d.mode) == (incidents.USER, incidents.USER, 0o750)


def test_resources_ops_logrotate_keeps_at_least_a_year(ctx_for) -> None:
    text = _by_path(incidents.resources(ctx_for("ops")))[
        "/etc/logrotate.d/hosting-incidents"].content
    assert "monthly" in text
    assert int(re.search(r"^\s*rotate (\d+)$", text, re.M).group(1)) >= 12
    assert incidents.LOG in text and f"su {incidents.USER}" in text


def test_resources_ops_ships_the_receiver_source_unchanged(ctx_for) -> None:
    files = _by_path(incidents.resources(ctx_for("ops")))
    shipped = files[incidents.RECEIVER]
    assert shipped.content == (incidents.SOURCE / "receiver.py").read_text()
    assert "incidents-restart" in shipped.notify


def test_handlers_names_known_to_every_notify(ctx_for) -> None:
    names = {h.name for h in incidents.HANDLERS}
    for r in incidents.resources(ctx_for("ops")):
        assert set(getattr(r, "notify", ())) <= names


def test_append_argv_runs_receiver_append_on_the_log() -> None:
    assert incidents.append_argv()[-4:] == [incidents.RECEIVER, "append", "--log",
                                            incidents.LOG]
