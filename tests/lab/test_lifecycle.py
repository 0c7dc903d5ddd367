"""`up` is re-entrant: a second run changes nothing; a run after damage repairs only that."""
from __future__ import annotations

import copy
import dataclasses
import json
import socket
import subprocess
from ipaddress import ip_network
from pathlib import Path

import pytest
import yaml

from lab import network
from lab.lab import Lab
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


def test_a_site_added_to_the_stack_gets_its_host_and_nothing_else_restarts(
        lab: LabSession, tmp_path: Path) -> None:
    cfg = lab.lab.cfg
    doc = yaml.safe_load(cfg.stack_file.read_text())
    sites = doc["config"]["hosting:sites"]
    extra = {**copy.deepcopy(sites[-1]), "name": "mairie", "domain": "mairie.villeparisis.fr",
             "aliases": [], "public_ip": "198.51.100.19", "database": {"name": "mairie"},
             "host_number": max(s["host_number"] for s in sites) + 1}
    sites.append(extra)
    bigger = tmp_path / "Pulumi.prod.yaml"
    bigger.write_text(yaml.safe_dump(doc))
    before = {h: lab.lab.container(h).supervisor_pid() for h in HOSTS}
    try:
        grown = Lab(dataclasses.replace(cfg, stack_file=bigger)).up()
        inventory = json.loads(lab.inventory_path.read_text())
        mairie_ip = next(s["public_ip"] for s in inventory["sites"] if s["name"] == "mairie")
        assert len(grown.changes) == 4, grown.changes
        assert grown.changes[0] == f"saved configuration {cfg.config_file}"
        assert grown.changes[1].startswith("proxy: addresses now") and \
            grown.changes[1].endswith(f", {mairie_ip}")
        assert grown.changes[2].startswith("web-mairie: created")
        assert grown.changes[3] == "wrote inventory.json, ssh_config, known_hosts"
        # Nothing restarted: the proxy got its new site IP in place.
        assert {h: lab.lab.container(h).supervisor_pid() for h in HOSTS} == before
        assert "web-mairie" in [h["name"] for h in inventory["hosts"]]
        assert f"{mairie_ip}/32" in lab.run("proxy", "ip -br addr show pub0").stdout.split()
        assert lab.run("web-mairie", "systemctl is-system-running --wait").stdout.strip() \
            == "running"
    finally:
        shrunk = lab.lab.up()
    assert "web-mairie: removed (no longer in the stack)" in shrunk.changes
    assert any(c.startswith("proxy: addresses now") for c in shrunk.changes)
    assert {h: lab.lab.container(h).supervisor_pid() for h in HOSTS} == before
    assert lab.lab.leftovers().netns == sorted(cfg.netns(h) for h in HOSTS)


def test_up_refuses_a_range_that_would_cut_the_machine_off_the_debian_mirror(
        lab: LabSession, tmp_path: Path) -> None:
    """Found by trying: the machine reached deb.debian.org (and PyPI) at an address inside a
    documentation range; a lab bridge on that range took the route and cut everyone off."""
    try:
        mirror = socket.getaddrinfo("deb.debian.org", 80, socket.AF_INET)[0][4][0]
    except OSError:
        pytest.skip("no DNS here: nothing to protect")
    risky = ip_network(f"{mirror}/26", strict=False)
    cfg = dataclasses.replace(lab.lab.cfg, prefix="hlabr", state_dir=tmp_path / "state",
                              public_cidr=str(risky))
    route_before = subprocess.run(["ip", "route", "get", mirror], capture_output=True,
                                  text=True).stdout.split()
    with pytest.raises(RuntimeError, match=f"contains {mirror}, the address this machine "
                                           "reaches deb.debian.org"):
        Lab(cfg).up()
    assert Lab(cfg).leftovers().empty()
    assert subprocess.run(["ip", "route", "get", mirror], capture_output=True,
                          text=True).stdout.split() == route_before
