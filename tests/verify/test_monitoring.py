"""Monitoring (issue 13, R-HOST-4) on any inventory: exporters listen on private addresses only
and nftables lets only ops scrape them; on ops, Prometheus, Alertmanager, the blackbox exporter
and the incident receiver listen on loopback only, every inventory host is a target up, and no
alert fires."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

NODE_EXPORTER = 9100
SETTLE = 90  # seconds a freshly deployed Prometheus may take to scrape everything once


def _settled(check: Callable[[], list[Any]]) -> list[Any]:
    """What `check` finds wrong, polled until it finds nothing or SETTLE seconds passed."""
    deadline = time.monotonic() + SETTLE
    while True:
        problems = check()
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(2)


def _listeners(host: Any) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket."""
    out = []
    for line in host.check_output("ss -Hltn").splitlines():
        addr, _, port = line.split()[3].rpartition(":")
        out.append((addr.strip("[]"), int(port)))
    return out


def _bastion(inventory: dict[str, Any]) -> dict[str, Any]:
    return next(h for h in inventory["hosts"] if h["name"] == inventory["bastion"])


def test_node_exporter_running_on_private_address_only(host, host_entry):
    assert host.service("prometheus-node-exporter").is_running
    assert host.service("prometheus-node-exporter").is_enabled
    addrs = {a for a, p in _listeners(host) if p == NODE_EXPORTER}
    assert addrs == {host_entry["private_ip"]}


def test_node_exporter_port_open_to_the_bastion_only(host, host_entry, inventory):
    rules = [line.strip() for line in host.check_output("nft list ruleset").splitlines()
             if "9100" in line]
    bastion = _bastion(inventory)
    if host_entry["name"] == bastion["name"]:
        assert rules == []  # scraped locally, over loopback
    else:
        assert rules == [f"ip saddr {bastion['private_ip']} tcp dport 9100 accept"], rules


@pytest.mark.roles("ops")
def test_monitoring_daemons_listen_on_loopback_only(host, host_entry):
    listeners = _listeners(host)
    for port in (9090, 9093, 9115, 9099):  # Prometheus, Alertmanager, blackbox, incidents
        assert {a for a, p in listeners if p == port} == {"127.0.0.1"}, port
    # Nothing else on a network address: SSH, and on the private address the node exporter
    # and the central logging's TLS listener (6514, issue 17, tests/verify/test_logging.py).
    exposed = {(a, p) for a, p in listeners if not a.startswith("127.") and a != "::1"}
    assert exposed <= {("0.0.0.0", 22), ("::", 22), (host_entry["private_ip"], NODE_EXPORTER),
                       (host_entry["private_ip"], 6514)}


def _prometheus(host: Any, path: str) -> Any:
    doc = json.loads(host.check_output(f"curl -fsS --max-time 10 'http://127.0.0.1:9090{path}'"))
    assert doc["status"] == "success"
    return doc["data"]


@pytest.mark.roles("ops")
def test_prometheus_every_inventory_host_is_a_target_up(host, inventory):
    def missing() -> list[str]:
        result = _prometheus(host, "/api/v1/query?query=" + quote('up{job="node"}'))["result"]
        up = {r["metric"]["host"]: r["value"][1] for r in result}
        return [h["name"] for h in inventory["hosts"] if up.get(h["name"]) != "1"]
    assert _settled(missing) == []


@pytest.mark.roles("ops")
def test_prometheus_no_target_down(host):
    def down() -> list[tuple[str, str, str]]:
        targets = _prometheus(host, "/api/v1/targets?state=active")["activeTargets"]
        return [(t["labels"].get("job"), t["labels"].get("instance"), t.get("lastError"))
                for t in targets if t["health"] != "up"]
    assert _settled(down) == []


@pytest.mark.roles("ops")
def test_prometheus_no_alert_firing(host):
    def firing() -> list[tuple[str, str]]:
        alerts = _prometheus(host, "/api/v1/alerts")["alerts"]
        return [(a["labels"]["alertname"], a["labels"].get("site") or a["labels"].get("host"))
                for a in alerts if a["state"] == "firing"]
    assert _settled(firing) == []
