"""policy/__main__.py: the pulumi_policy wrapper around infra/policies.py.

pulumi_policy's own objects (PolicyResource, its unknown-checking proxies) are built here as the
analyzer builds them, so the adapter is tested without the Pulumi engine. Importing the pack must
not construct the PolicyPack (that would start serving gRPC and block).
"""
from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions
from pulumi_policy.proxy import unknown_checking_proxy

from infra.policies import RULES

from .conftest import REPO

PACK = REPO / "policy" / "__main__.py"


@pytest.fixture(scope="module")
def pack() -> dict[str, Any]:
    return runpy.run_path(str(PACK), run_name="policy_pack_under_test")


def _policy_resources(view: list[dict[str, Any]], stack: str) -> list[PolicyResource]:
    out: dict[str, PolicyResource] = {}
    for r in view:
        opts = PolicyResourceOptions(r["protect"], [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
        out[r["name"]] = PolicyResource(
            r["type"], unknown_checking_proxy(r["props"]),
            f"urn:pulumi:{stack}::hosting::{r['type']}::{r['name']}", r["name"], opts, None, None,
            [], {})
    for r in view:
        out[r["name"]].property_dependencies = {k: [out[n] for n in v]
                                                for k, v in r["deps"].items()}
    return list(out.values())


def _violations(pack: dict[str, Any], resources: list[PolicyResource], root: Path = REPO
                ) -> dict[str, list[str]]:
    from pulumi_policy import StackValidationArgs

    found: dict[str, list[str]] = {}
    for policy in pack["policies"](root):
        messages: list[str] = []
        policy.validate(StackValidationArgs(resources),
                        lambda message, urn=None, m=messages: m.append(message))
        found[policy.name] = messages
    return found


def test_pack_import_builds_no_policy_pack_and_wraps_every_rule(pack):
    assert [p.name for p in pack["policies"]()] == [r.name for r in RULES]
    assert "PolicyPack(" in PACK.read_text()
    assert 'if __name__ == "__main__":' in PACK.read_text()


def test_pack_stack_name_read_from_urns(pack, builds):
    resources = _policy_resources(builds["preprod"][1].policy_view(), "preprod")
    assert pack["stack_name"](resources) == "preprod"
    assert pack["stack_name"]([]) is None


@pytest.mark.parametrize("env", ["prod", "preprod"])
def test_pack_validate_real_stacks_report_nothing(pack, builds, env):
    resources = _policy_resources(builds[env][1].policy_view(), env)
    assert _violations(pack, resources) == {r.name: [] for r in RULES}


def test_pack_validate_unprotected_storage_reports_violation(pack, builds):
    view = builds["prod"][1].policy_view()
    for r in view:
        if r["name"] == "vm-backup-a":
            r["protect"] = False
    resources = _policy_resources(view, "prod")
    assert _violations(pack, resources)["storage-protected"] == [
        "Instance vm-backup-a: not protected (protect=True expected)"]


def test_pack_validate_unknown_stack_file_reports_violation(pack, builds, tmp_path):
    resources = _policy_resources(builds["prod"][1].policy_view(), "prod")
    found = _violations(pack, resources, root=tmp_path)
    assert all(len(v) == 1 and v[0].startswith("cannot read the stack's model:")
               for v in found.values())


def test_pack_plain_keeps_unknowns_as_sentinels(pack):
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    proxied = unknown_checking_proxy({"a": [1, {"b": unknown}], "c": {"d": unknown}})
    assert pack["plain"](proxied) == {"a": [1, {"b": unknown}], "c": {"d": unknown}}


def test_pack_as_resources_carries_protect_and_property_dependencies(pack, builds):
    view = builds["prod"][1].policy_view()
    converted = pack["as_resources"](_policy_resources(view, "prod"))
    attach = next(r for r in converted if r["type"].endswith("FailoverIpAttach"))
    assert attach["protect"] is True and attach["deps"]["routedTo"] == ["vm-proxy"]
    assert converted == [dict(r, deps=r["deps"]) for r in view]
