"""Fault drill 6 (issue 11 section 3): removing the first site from the stack file leaves every
other host exactly as it was. Web hosts take their private address from `sites[].host_number`,
never from their position, so the two programs (prod, and prod without its first site) register
the remaining resources with the same URNs and the same inputs: `pulumi up` replaces nothing
but deletes what belonged to the removed site (R-GDPR-8: protected hosts are never replaced as
a side effect of another site's removal).
"""
from __future__ import annotations

from ipaddress import IPv4Address, ip_network
from typing import Any

import pytest

from infra.mockrun import MockBuild, Registered, build_under_mocks
from model import Stack

from .conftest import prod_with

INSTANCE = "openstack:compute/instance:Instance"
SG = "openstack:networking/secGroup:SecGroup"
SG_RULE = "openstack:networking/secGroupRule:SecGroupRule"
REMOVED_SITE, KEPT_SITE = "villeparisis", "participation"


def _drop_first_site(config: dict[str, Any]) -> None:
    del config["hosting:sites"][0]


@pytest.fixture(scope="module")
def without_first() -> tuple[Stack, MockBuild]:
    stack = prod_with(_drop_first_site)
    return stack, build_under_mocks(stack)


def _by_urn(b: MockBuild) -> dict[str, Registered]:
    return {r.urn: r for r in b.resources}


def _diffable(r: Registered) -> dict[str, Any]:
    """What `pulumi up` diffs: the inputs minus those under ignore_changes (user data, which the
    mocks fill with freshly generated host keys on every build), plus the options."""
    inputs = {k: v for k, v in r.inputs.items() if k not in r.ignore_changes}
    return {"inputs": inputs, "protect": r.protect, "ignore_changes": r.ignore_changes,
            "provider": r.provider.split("::")[-1]}


def _admitted(b: MockBuild) -> set[IPv4Address]:
    """Every address the storage security groups accept backups from (port 22 rules)."""
    return {a for r in b.of_type(SG_RULE) if r.name.startswith("sg-storage-")
            and r.inputs["portRangeMin"] == 22 and r.inputs["remoteIpPrefix"] != "10.20.0.11/32"
            for a in ip_network(r.inputs["remoteIpPrefix"])}


def test_build_without_first_site_keeps_remaining_urns_and_inputs(builds, without_first):
    _, before = builds["prod"]
    _, after = without_first
    old, new = _by_urn(before), _by_urn(after)
    kept = old.keys() & new.keys()
    assert {old[u].name for u in kept} >= {f"vm-{n}" for n in (
        "proxy", "ops", f"web-{KEPT_SITE}", "backup-a", "backup-b")}
    changed = sorted(old[u].name for u in kept if _diffable(old[u]) != _diffable(new[u]))
    assert changed == []


def test_build_without_first_site_deletes_only_what_served_it(builds, without_first):
    _, before = builds["prod"]
    _, after = without_first
    old, new = _by_urn(before), _by_urn(after)
    gone = sorted(old[u].name for u in old.keys() - new.keys() if old[u].type != SG_RULE)
    assert gone == sorted([
        f"vm-web-{REMOVED_SITE}", f"hostkey-web-{REMOVED_SITE}", f"port-web-{REMOVED_SITE}",
        "dns-villeparisis.fr", "dns-www.villeparisis.fr",
        f"edge-fw-site-{REMOVED_SITE}", *(f"edge-fw-site-{REMOVED_SITE}-{i}"
                                          for i in (0, 1, 2, 19))])
    # Added: at most security-group rules (the storage rules' collapsed prefix, see below).
    assert {new[u].type for u in new.keys() - old.keys()} <= {SG_RULE}


def test_build_without_first_site_remaining_hosts_keep_their_addresses(builds, without_first):
    _, before = builds["prod"]
    _, after = without_first
    ip_before = {h["name"]: h["private_ip"] for h in before.outputs["inventory"]["hosts"]}
    ip_after = {h["name"]: h["private_ip"] for h in after.outputs["inventory"]["hosts"]}
    assert ip_after == {n: ip for n, ip in ip_before.items() if n != f"web-{REMOVED_SITE}"}
    assert ip_after[f"web-{KEPT_SITE}"] == "10.20.0.101"
    vm = after.get(INSTANCE, f"vm-web-{KEPT_SITE}")
    assert vm.state["networks"] == [{"port": f"port-web-{KEPT_SITE}-id", "uuid": "os-net-GRA11",
                                     "fixedIpV4": "10.20.0.101"}]
    assert vm.protect


def test_build_without_first_site_security_groups_unchanged_storage_admits_exactly_the_rest(
        builds, without_first):
    _, before = builds["prod"]
    _, after = without_first
    groups = {r.urn: _diffable(r) for r in before.of_type(SG)}
    assert {r.urn: _diffable(r) for r in after.of_type(SG)} == groups
    # The storage rules collapse the web hosts' addresses (.100/31 -> .101/32): the rule for
    # the remaining host is a new resource, created before the old one is deleted (Pulumi
    # deletes what left the program last), so its backups are never refused in between.
    assert _admitted(before) == {IPv4Address("10.20.0.100"), IPv4Address("10.20.0.101")}
    assert _admitted(after) == {IPv4Address("10.20.0.101")}


def test_build_reordered_sites_registers_identical_resources(builds):
    _, before = builds["prod"]
    after = build_under_mocks(prod_with(lambda c: c["hosting:sites"].reverse()))
    old, new = _by_urn(before), _by_urn(after)
    assert old.keys() == new.keys()
    assert [old[u].name for u in old if _diffable(old[u]) != _diffable(new[u])] == []
