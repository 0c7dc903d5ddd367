"""Central logging (issue 17, lynis LOGG-2154; docs/logging.md) on any inventory: rsyslog runs
on every host and forwards to the bastion's private address over TLS; the bastion listens for
it on its private address only, mutual TLS, and keeps the logs in directories only root and
adm can read. Written from the documented design, independent of roles/ like the rest."""
from __future__ import annotations

import re
from typing import Any

import pytest

SYSLOG_TLS = 6514
FORWARD = "/etc/rsyslog.d/50-hosting-forward.conf"
RECEIVE = "/etc/rsyslog.d/40-hosting-receive.conf"
REMOTE_DIR = "/var/log/remote"


def _bastion(inventory: dict[str, Any]) -> dict[str, Any]:
    return next(h for h in inventory["hosts"] if h["name"] == inventory["bastion"])


def test_rsyslog_running_and_enabled(host):
    svc = host.service("rsyslog")
    assert svc.is_running and svc.is_enabled


def test_rsyslog_forwards_to_the_bastion_over_tls_authenticating_it(host, inventory):
    conf = host.file(FORWARD).content_string
    bastion = _bastion(inventory)
    targets = re.findall(r'target="([^"]+)"\s+port="(\d+)"', conf)
    assert targets == [(bastion["private_ip"], str(SYSLOG_TLS))]
    assert 'StreamDriver="gtls" StreamDriverMode="1"' in conf
    assert 'StreamDriverAuthMode="x509/name"' in conf
    assert f'StreamDriverPermittedPeers="{bastion["name"]}"' in conf


@pytest.mark.roles("ops")
def test_bastion_listens_for_logs_on_its_private_address_only(host, host_entry):
    addrs = set()
    for line in host.check_output("ss -Hltn").splitlines():
        addr, _, port = line.split()[3].rpartition(":")
        if int(port) == SYSLOG_TLS:
            addrs.add(addr.strip("[]"))
    assert addrs == {host_entry["private_ip"]}


@pytest.mark.roles("ops")
def test_bastion_admits_only_clients_with_a_certificate(host):
    conf = host.file(RECEIVE).content_string
    assert 'StreamDriver.Mode="1" StreamDriver.AuthMode="x509/name"' in conf
    assert "PermittedPeer=[" in conf


@pytest.mark.roles("ops")
def test_bastion_central_logs_readable_by_root_and_adm_only(host, inventory):
    for path in (REMOTE_DIR, *(f"{REMOTE_DIR}/{h['name']}" for h in inventory["hosts"])):
        d = host.file(path)
        assert d.is_directory and (d.user, d.group) == ("root", "adm"), path
        assert d.mode & 0o027 == 0, f"{path}: mode {d.mode:o}"
