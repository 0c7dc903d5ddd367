"""`hosting:acme` in the stack file (issue 14): optional, typed with its defaults, checked by the
schema with the field named, copied into the inventory for roles/acme."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from model import load_stack
from model.errors import ConfigErrors
from model.inventory import build_inventory

ROOT = Path(__file__).resolve().parents[3]


def stack_with(tmp_path: Path, acme: dict | None) -> Path:
    doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    if acme is not None:
        doc["config"]["hosting:acme"] = acme
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_load_stack_without_acme_has_none(tmp_path: Path):
    assert load_stack(stack_with(tmp_path, None)).acme is None


def test_load_stack_acme_defaults_filled(tmp_path: Path):
    acme = load_stack(stack_with(tmp_path, {"enabled": True, "email": "a@villeparisis.fr",
                                            "directory": "staging"})).acme
    assert acme is not None and acme.enabled and acme.directory == "staging"
    assert (acme.elliptic_curve, acme.ovh_endpoint, acme.propagation_seconds, acme.names) == \
        ("secp256r1", "ovh-eu", 120, ())


@pytest.mark.parametrize(("acme", "field"), [
    ({"enabled": "yes"}, "acme.enabled"),
    ({"directory": "http://x"}, "acme.directory"),
    ({"elliptic_curve": "p521"}, "acme.elliptic_curve"),
    ({"names": ["bad name"]}, "acme.names[0]"),
    ({"propagation_seconds": 99999}, "acme.propagation_seconds"),
    ({"stagging": True}, "acme.stagging"),
])
def test_load_stack_bad_acme_field_names_it(tmp_path: Path, acme: dict, field: str):
    with pytest.raises(ConfigErrors) as err:
        load_stack(stack_with(tmp_path, acme))
    assert any(e.path == field for e in err.value.errors), err.value.errors


def test_build_inventory_acme_section_read_by_role(tmp_path: Path):
    from engine.inventory import Inventory
    from model.inventory import HostAddresses, validate_inventory
    from model.topology import plan_hosts, private_addresses
    from roles.acme.config import acme as role_acme

    stack = load_stack(stack_with(tmp_path, {"enabled": True, "email": "a@villeparisis.fr"}))
    addrs = private_addresses(stack)
    site_ips = tuple(str(s.public_ip) for s in stack.sites)
    hosts = [HostAddresses(p.name, str(addrs[p.name]), "198.51.100.20"
                           if p.name in ("proxy", "ops") else None,
                           site_ips if p.role == "proxy" else ()) for p in plan_hosts(stack)]
    doc = build_inventory(stack, source="pulumi", hosts=hosts,
                          site_public_ips={s.name: str(s.public_ip) for s in stack.sites},
                          host_key_fingerprints={p.name: "SHA256:" + "A" * 43
                                                 for p in plan_hosts(stack)})
    validate_inventory(doc)
    assert "names" not in doc["acme"]
    acme = role_acme(Inventory.from_doc(doc))
    assert acme is not None and acme.names == ("*.villeparisis.fr", "villeparisis.fr")
