"""Every host is a whole Debian 13 system: systemd boots cleanly, reboots come back, and the
inventory the lab writes is the model's document describing the hosts that really exist."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from ipaddress import ip_address
from pathlib import Path

import pytest

from lab.config import REPO_ROOT
from lab.testing import LabSession, planned_hosts
from model.inventory import validate_inventory

pytestmark = pytest.mark.lab

HOSTS = [n for n, _, _ in planned_hosts()]


def _cli(lab: LabSession, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", "--prefix", lab.lab.cfg.prefix,
                           "--state-dir", str(lab.lab.cfg.state_dir), *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)


@pytest.mark.parametrize("host", HOSTS)
def test_systemctl_is_system_running_says_running(lab: LabSession, host: str) -> None:
    proc = lab.run(host, "systemctl is-system-running --wait", check=False)
    failed = lab.run(host, "systemctl --failed --no-legend", check=False).stdout
    assert proc.stdout.strip() == "running", failed


@pytest.mark.parametrize("host", HOSTS)
def test_host_is_debian_13_and_knows_it_is_a_container(lab: LabSession, host: str) -> None:
    assert "VERSION_CODENAME=trixie" in lab.run(host, "cat /etc/os-release").stdout
    # What roles use to skip the few steps a container cannot do (docs/lab.md).
    assert lab.run(host, "systemd-detect-virt -c").stdout.strip() == "systemd-nspawn"


def test_reboot_inside_a_host_brings_it_back(lab: LabSession) -> None:
    host = HOSTS[-1]
    c = lab.lab.container(host)
    supervisor, nspawn = c.supervisor_pid(), c.nspawn_pid()
    lab.sudo(host, "touch /run/lab-before-reboot")
    lab.sudo(host, "systemctl reboot", check=False)  # the connection may drop mid-command
    deadline = time.monotonic() + 90
    while True:
        if c.nspawn_pid() not in (None, nspawn):
            proc = lab.run(host, "systemctl is-system-running --wait", check=False, timeout=60)
            if proc.returncode == 0:
                break
        assert time.monotonic() < deadline, f"{host} did not come back: {c.console_log}"
        time.sleep(0.5)
    assert proc.stdout.strip() == "running"
    assert lab.run(host, "test -e /run/lab-before-reboot", check=False).returncode != 0
    assert c.supervisor_pid() == supervisor  # the same supervisor restarted nspawn


def test_inventory_is_the_model_document_for_the_lab(lab: LabSession) -> None:
    doc = lab.inventory
    validate_inventory(doc)
    assert doc["source"] == "lab"
    assert doc["environment"] == "prod"
    assert [h["name"] for h in doc["hosts"]] == HOSTS
    cfg = lab.lab.cfg
    assert doc["private_cidr"] == cfg.private_cidr
    assert doc["admin_networks"] == [f"{cfg.public_net.network_address + 1}/32"]
    assert doc["ssh"]["host_ca_public_key"] == lab.host_ca_pub.read_text().strip()
    for site in doc["sites"]:
        assert ip_address(site["public_ip"]) in cfg.public_net
        assert site["public_ip"] in lab.host("proxy")["site_ips"]


def test_cli_inventory_status_and_ssh(lab: LabSession) -> None:
    inventory = _cli(lab, "inventory")
    assert inventory.returncode == 0 and json.loads(inventory.stdout) == lab.inventory
    names = _cli(lab, "status", "--names")
    assert names.returncode == 0 and names.stdout.split() == HOSTS
    table = _cli(lab, "status")
    assert table.returncode == 0
    for host in HOSTS:
        row = next(line for line in table.stdout.splitlines() if line.startswith(host + " "))
        assert row.split()[2:4] == ["running", "running"], row
    ssh = _cli(lab, "ssh", HOSTS[0], "hostname")
    assert ssh.returncode == 0 and ssh.stdout.strip() == HOSTS[0]


def test_ca_keys_are_private(lab: LabSession) -> None:
    trust = lab.lab.trust
    for key in (trust.user_ca, trust.host_ca):
        assert key.stat().st_mode & 0o777 == 0o600
    assert trust.dir.stat().st_mode & 0o777 == 0o700


def test_machine_never_forwards(lab: LabSession) -> None:
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"
