from __future__ import annotations

import jsonschema
import pytest

from model import load_stack
from model.inventory import HostAddresses, build_inventory, validate_inventory
from model.topology import plan_hosts, private_addresses

from .conftest import ROOT

FP = "SHA256:" + "A" * 43


def _inventory(env: str = "prod") -> dict:
    stack = load_stack(ROOT / f"Pulumi.{env}.yaml")
    addrs = private_addresses(stack)
    hosts = [HostAddresses(n, str(ip), "203.0.113.5" if n in ("proxy", "ops") else None,
                           tuple(str(s.public_ip) for s in stack.sites) if n == "proxy" else ())
             for n, ip in addrs.items()]
    return build_inventory(stack, source="pulumi", hosts=hosts,
                           site_public_ips={s.name: str(s.public_ip) for s in stack.sites},
                           host_key_fingerprints={n: FP for n in addrs})


@pytest.mark.parametrize("env", ["prod", "preprod"])
def test_build_inventory_real_stacks_validate_against_schema(env):
    validate_inventory(_inventory(env))


def test_build_inventory_sites_live_on_their_own_web_host():
    doc = _inventory()
    assert {s["name"]: s["host"] for s in doc["sites"]} == {
        "villeparisis": "web-villeparisis", "participation": "web-participation"}


def test_build_inventory_only_proxy_and_ops_have_public_addresses():
    doc = _inventory()
    public = {h["name"] for h in doc["hosts"] if h["public_ip"]}
    assert public == {"proxy", "ops"}
    proxy = next(h for h in doc["hosts"] if h["name"] == "proxy")
    assert proxy["site_ips"] == ["198.51.100.17", "198.51.100.18"]


def test_build_inventory_secrets_are_references_not_values():
    doc = _inventory()
    assert doc["secrets"]
    assert all(set(v) == {"ref"} for v in doc["secrets"].values())


def test_build_inventory_missing_host_address_raises():
    stack = load_stack(ROOT / "Pulumi.prod.yaml")
    with pytest.raises(ValueError, match="no addresses for hosts: .*backup-b"):
        build_inventory(stack, source="lab", hosts=[HostAddresses("proxy", "10.0.0.1")],
                        site_public_ips={}, host_key_fingerprints={})


def test_validate_inventory_unknown_field_rejected():
    doc = _inventory()
    doc["hosts"][0]["password"] = "hunter2"
    with pytest.raises(jsonschema.ValidationError, match="password"):
        validate_inventory(doc)


def test_validate_inventory_site_on_unknown_host_rejected():
    doc = _inventory()
    doc["sites"][0]["host"] = "web-ghost"
    with pytest.raises(jsonschema.ValidationError, match="web-ghost"):
        validate_inventory(doc)


def test_private_addresses_unique_and_inside_cidr():
    stack = load_stack(ROOT / "Pulumi.prod.yaml")
    addrs = private_addresses(stack)
    assert len(set(addrs.values())) == len(plan_hosts(stack))
    assert all(a in stack.network.private_cidr for a in addrs.values())


# -- optional admin-side paths (issue 12): the lab names them, Pulumi does not -------------------
def _with_admin_paths() -> dict:
    doc = _inventory()
    doc["ssh"].update(ca_dir="/var/lib/lab/ca", identity="/var/lib/lab/user/id_ed25519")
    doc["tls"]["source"] = {"directory": "/var/lib/lab/tls/prod",
                            "client_ca": "/var/lib/lab/tls/ca.pem"}
    return doc


@pytest.mark.parametrize("env", ["prod", "preprod"])
def test_build_inventory_admin_paths_not_set(env):
    doc = _inventory(env)
    assert not {"ca_dir", "identity"} & set(doc["ssh"])
    assert set(doc["tls"]) == {"certificate", "key"}


def test_validate_inventory_admin_paths_accepted():
    validate_inventory(_with_admin_paths())


@pytest.mark.parametrize(("where", "change", "message"), [
    ("ssh", lambda d: d["ssh"].update(ca_dir="ca"), "'ca' does not match '\\^/'"),
    ("ssh", lambda d: d["ssh"].update(identity=7), "7 is not of type 'string'"),
    ("tls", lambda d: d["tls"].update(source={"client_ca": "/x/ca.pem"}),
     "'directory' is a required property"),
    ("tls", lambda d: d["tls"]["source"].update(dir="/x"), "'dir' was unexpected"),
    ("tls", lambda d: d["tls"].update(sorce={"directory": "/x"}), "'sorce' was unexpected"),
])
def test_validate_inventory_bad_admin_path_refused_naming_it(where, change, message):
    doc = _with_admin_paths()
    change(doc)
    with pytest.raises(jsonschema.ValidationError, match=message) as exc:
        validate_inventory(doc)
    assert exc.value.absolute_path[0] == where
