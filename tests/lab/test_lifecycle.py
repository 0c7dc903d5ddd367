"""`up` is re-entrant: a second run changes nothing; a run after damage repairs only that."""
from __future__ import annotations

import pytest

from lab import network
from lab.testing import LabSession, planned_hosts

pytestmark = pytest.mark.lab

HOSTS = [n for n, _, _ in planned_hosts()]


def test_second_up_changes_nothing(lab: LabSession) -> None:
    before = {h: lab.lab.container(h).supervisor_pid() for h in HOSTS}
    inventory = lab.inventory_path.read_text()
    report = lab.lab.up()
    assert report.changes == []
    assert {h: lab.lab.container(h).supervisor_pid() for h in HOSTS} == before
    assert lab.inventory_path.read_text() == inventory


def test_up_repairs_a_stopped_host_a_lost_namespace_and_a_dead_apt_proxy(
        lab: LabSession) -> None:
    stopped, lost = HOSTS[-1], HOSTS[-2]
    untouched = {h: lab.lab.container(h).supervisor_pid() for h in HOSTS[:-2]}
    lab.lab.container(stopped).stop()
    lab.lab.container(lost).stop()
    network.delete_host_network(lab.lab.cfg.netns(lost))
    lab.lab.apt.stop()

    report = lab.lab.up()
    assert sorted(report.changes) == sorted([
        f"{lost}: re-created its network namespace", f"{lost}: started",
        f"{stopped}: started", f"started apt proxy on {lab.lab.apt.url}"])
    assert {h: lab.lab.container(h).supervisor_pid() for h in HOSTS[:-2]} == untouched
    for host in (stopped, lost):
        assert lab.run(host, "systemctl is-system-running --wait").stdout.strip() == "running"
    assert lab.lab.up().changes == []
