"""The `inventory` stack output: schema-valid, from the instances' real addresses and the
generated host keys, matching the model, and free of secrets."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from infra.hostkeys import fingerprint
from infra.outputs import observed_addresses
from model.inventory import validate_inventory
from model.topology import plan_hosts, private_addresses

from .conftest import stack_of

INSTANCE = "openstack:compute/instance:Instance"
KEY = "tls:index/privateKey:PrivateKey"


def test_inventory_output_validates_against_the_schema(built):
    stack, b = built
    doc = b.outputs["inventory"]
    validate_inventory(doc)
    assert (doc["source"], doc["environment"]) == ("pulumi", stack.environment)
    assert doc["indexable"] is stack.exposure.indexable


def test_inventory_hosts_match_the_model_and_the_cloud(built):
    stack, b = built
    hosts = {h["name"]: h for h in b.outputs["inventory"]["hosts"]}
    addrs = private_addresses(stack)
    assert list(hosts) == [p.name for p in plan_hosts(stack)]
    for plan in plan_hosts(stack):
        h = hosts[plan.name]
        assert (h["role"], h["region"], h["private_ip"]) == (plan.role, plan.region,
                                                            str(addrs[plan.name]))
        vm = b.get(INSTANCE, f"vm-{plan.name}").state
        ext = [n["fixedIpV4"] for n in vm["networks"] if n.get("name") == "Ext-Net"]
        assert h["public_ip"] == (ext[0] if ext else None)
    assert hosts["proxy"]["site_ips"] == [str(s.public_ip) for s in stack.sites]
    assert {s["name"]: (s["host"], s["public_ip"]) for s in b.outputs["inventory"]["sites"]} == {
        s.name: (s.host, str(s.public_ip)) for s in stack.sites}


def test_inventory_fingerprints_are_the_generated_host_keys(built):
    _, b = built
    for h in b.outputs["inventory"]["hosts"]:
        public = b.get(KEY, f"hostkey-{h['name']}").state["publicKeyOpenssh"]
        assert h["host_key_fingerprint"] == fingerprint(public)
        assert b.outputs["host_public_keys"][h["name"]] == public


def test_inventory_holds_no_secret_and_is_not_a_secret_output(built):
    _, b = built
    text = json.dumps(b.outputs["inventory"])
    assert "PRIVATE KEY" not in text and "mock-password" not in text
    assert all(ref["ref"].startswith("host-file:")
               for ref in b.outputs["inventory"]["secrets"].values())
    assert b.secret_outputs == frozenset()


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_fingerprint_matches_ssh_keygen(tmp_path, builds):
    _, b = builds["prod"]
    public = b.get(KEY, "hostkey-proxy").state["publicKeyOpenssh"]
    (tmp_path / "k.pub").write_text(public)
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "k.pub")],
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == fingerprint(public)


def test_observed_addresses_private_ip_differs_from_plan_raises():
    stack = stack_of("prod")
    web = next(p for p in plan_hosts(stack) if p.role == "web")
    with pytest.raises(ValueError, match="plan says 10.20.0.100"):
        observed_addresses(stack, web, [{"uuid": "x", "fixedIpV4": "10.20.0.77"}], [])


def test_observed_addresses_public_host_without_public_port_raises():
    stack = stack_of("prod")
    proxy = next(p for p in plan_hosts(stack) if p.name == "proxy")
    with pytest.raises(ValueError, match="no address on Ext-Net"):
        observed_addresses(stack, proxy, [{"uuid": "x", "fixedIpV4": "10.20.0.10"}], [])
