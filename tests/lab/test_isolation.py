"""Each host is its own machine: own files and packages, own addresses; web and storage hosts
live on the private network only; the proxy's site IPs exist only on the public side."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lab.testing import LabSession, Probe, planned_hosts

pytestmark = pytest.mark.lab

PLAN = planned_hosts()
WEBS = [n for n, role, _ in PLAN if role == "web"]
WEB_AND_STORAGE = [n for n, role, _ in PLAN if role in ("web", "storage")]
PRIVATE_ONLY = [n for n, _, public in PLAN if not public]
APT = "sudo -n env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get -q -y"


def test_package_installed_on_one_host_is_absent_on_another(lab: LabSession) -> None:
    one, other = WEBS[0], WEBS[1]
    # Through the lab's apt proxy (the hosts have no other way out); refresh the package lists
    # only if the image's are too old for the archive.
    lab.run(one, f"{APT} install tree || ({APT} update && {APT} install tree)", timeout=700)
    assert lab.run(one, "dpkg-query -W -f='${Status}' tree").stdout == "install ok installed"
    assert lab.run(one, "test -x /usr/bin/tree", check=False).returncode == 0
    assert lab.run(other, "dpkg-query -W tree", check=False).returncode != 0
    assert lab.run(other, "test -e /usr/bin/tree", check=False).returncode != 0
    # And it came through the proxy, which logged the download.
    log = (lab.lab.apt.dir / "log" / "apt-cacher.log").read_text()
    assert "/tree_" in log


def test_a_file_written_on_one_host_is_absent_on_the_others(lab: LabSession) -> None:
    first = PLAN[0][0]
    lab.sudo(first, "echo mine > /etc/lab-isolation-test")
    try:
        assert lab.run(first, "cat /etc/lab-isolation-test").stdout == "mine\n"
        for name, _, _ in PLAN[1:]:
            assert lab.run(name, "test -e /etc/lab-isolation-test", check=False).returncode != 0
    finally:
        lab.sudo(first, "rm -f /etc/lab-isolation-test")


@pytest.mark.parametrize("host", [n for n, _, _ in PLAN])
def test_host_has_exactly_its_inventory_addresses_and_no_route_out(
        lab: LabSession, host: str) -> None:
    inv = lab.host(host)
    links = json.loads(lab.run(host, "ip -j addr show").stdout)
    addrs = {a["local"] for link in links for a in link.get("addr_info", [])
             if a.get("family") == "inet" and link["ifname"] != "lo"}
    want = {inv["private_ip"], *([inv["public_ip"]] if inv["public_ip"] else []),
            *inv["site_ips"]}
    assert addrs == want
    assert lab.run(host, "ip route show default").stdout.strip() == ""
    # No DNS, no route: the Debian archive is reachable only through the apt proxy.
    assert lab.run(host, "curl -sS -m 5 -o /dev/null http://deb.debian.org/debian/",
                   check=False).returncode != 0


def test_apt_proxy_listens_only_on_the_private_bridge_address(lab: LabSession) -> None:
    pid = lab.lab.apt.pid()
    assert pid is not None
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    # Other labs on the machine run their own proxy: look at this lab's process only.
    local = {line.split()[3] for line in listening if f"pid={pid}," in line}
    assert local == {f"{lab.lab.apt.address}:{lab.lab.cfg.apt_proxy_port}"}
    with Probe(lab.lab, "pub", 41) as internet:
        public_side = str(lab.lab.cfg.public_net.network_address + 1)
        assert internet.tcp_open([(public_side, lab.lab.cfg.apt_proxy_port)]) == {
            f"{public_side}:{lab.lab.cfg.apt_proxy_port}": False}


def test_web_and_storage_hosts_are_not_on_the_public_bridge(lab: LabSession) -> None:
    cfg = lab.lab.cfg
    ports = {p.name for p in Path(f"/sys/class/net/{cfg.public_bridge}/brif").iterdir()}
    expected = {cfg.veth(lab.lab.port_index(n), "pub") for n, _, public in PLAN if public}
    assert ports == expected
    for host in WEB_AND_STORAGE:
        assert lab.host(host)["public_ip"] is None
        names = {link["ifname"] for link in json.loads(lab.run(host, "ip -j link").stdout)}
        assert names == {"lo", "priv0"}


def test_from_the_internet_side_only_the_bastion_and_proxy_answer(lab: LabSession) -> None:
    """A client on the public bridge that even routes the private range onto its wire reaches
    the bastion and the proxy's site IPs, and nothing of the web and storage hosts."""
    bastion = lab.host(lab.inventory["bastion"])
    proxy = lab.hosts_with_role("proxy")[0]
    with Probe(lab.lab, "pub", 40) as internet:
        internet.route_on_link(lab.lab.cfg.private_cidr)
        targets = [(bastion["public_ip"], 22)]
        targets += [(ip, 22) for ip in lab.host(proxy)["site_ips"]]
        hidden = [(lab.host(h)["private_ip"], 22) for h in WEB_AND_STORAGE]
        result = internet.tcp_open(targets + hidden)
    for address, port in targets:
        assert result[f"{address}:{port}"], f"{address}:{port} should answer on the public side"
    for address, port in hidden:
        assert not result[f"{address}:{port}"], f"{address}:{port} answers on the public side"


def test_proxy_site_ips_do_not_answer_on_the_private_side(lab: LabSession) -> None:
    proxy = lab.hosts_with_role("proxy")[0]
    site_ips = lab.host(proxy)["site_ips"]
    assert site_ips and len(site_ips) == len(lab.inventory["sites"])
    # A private-only host has no route to them at all...
    for host in PRIVATE_ONLY:
        for ip in site_ips:
            assert lab.run(host, f"ip route get {ip}", check=False).returncode != 0
    # ...and a vRack neighbour that puts the public range on its wire gets no answer either
    # (the proxy answers ARP only on the interface that holds the address).
    with Probe(lab.lab, "prv", 250, index=91) as neighbour:
        neighbour.route_on_link(lab.lab.cfg.public_cidr)
        result = neighbour.tcp_open([(ip, 22) for ip in site_ips]
                                    + [(lab.host(proxy)["private_ip"], 22)])
    assert result == {**{f"{ip}:22": False for ip in site_ips},
                      f"{lab.host(proxy)['private_ip']}:22": True}
