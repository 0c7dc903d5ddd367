"""roles/acme/config.py: the ACME settings from the inventory, checked field by field, and the
OVH access rules the consumer key is requested with (issue 14, R-SCOPE-2)."""
from __future__ import annotations

import json

import pytest

from engine.inventory import Inventory
from roles.acme import config as c

SITES = ("villeparisis.fr", "www.villeparisis.fr", "participation.villeparisis.fr")
ZONE = "villeparisis.fr"
ON = {"enabled": True, "email": "hostmaster@villeparisis.fr"}


def with_acme(inv: Inventory, acme: dict) -> Inventory:
    doc = json.loads(json.dumps(inv.doc))
    doc["acme"] = acme
    return Inventory.from_doc(doc)


def test_from_doc_without_section_returns_none():
    assert c.from_doc(None, SITES, ZONE) is None
    assert c.from_doc({"enabled": False, "email": "x"}, SITES, ZONE) is None


def test_acme_prod_defaults_wildcard_and_apex_production_ecdsa(prod: Inventory):
    acme = c.acme(with_acme(prod, ON))
    assert acme is not None
    assert acme.names == ("*.villeparisis.fr", "villeparisis.fr")
    assert acme.directory == c.PRODUCTION
    assert (acme.key_type, acme.elliptic_curve) == ("ecdsa", "secp256r1")
    assert acme.lineage == "villeparisis.fr"
    assert not acme.lab


def test_from_doc_staging_name_resolves_to_staging_url():
    acme = c.from_doc({**ON, "directory": "staging"}, SITES, ZONE)
    assert acme is not None and acme.directory == c.STAGING


@pytest.mark.parametrize(("change", "field"), [
    ({"email": "nobody"}, "acme.email"),
    ({"names": ["*.example.org"]}, "acme.names[0]"),
    ({"names": ["bad name"]}, "acme.names[0]"),
    ({"directory": "http://acme.example/dir"}, "acme.directory"),
    ({"elliptic_curve": "secp521r1"}, "acme.elliptic_curve"),
    ({"key_type": "rsa"}, "acme.key_type"),
    ({"ovh_endpoint": "ovh-xx"}, "acme.ovh_endpoint"),
    ({"propagation_seconds": -1}, "acme.propagation_seconds"),
    ({"propagation_seconds": True}, "acme.propagation_seconds"),
    ({"stagin": True}, "acme.stagin"),
])
def test_from_doc_bad_field_raises_naming_it(change: dict, field: str):
    with pytest.raises(c.AcmeConfigError, match=rf"^{field.replace('[', '.').replace(']', '.')}"):
        c.from_doc({**ON, **change}, SITES, ZONE)


def test_access_rules_create_delete_refresh_of_zone_only():
    assert c.access_rules(ZONE) == [
        {"method": "POST", "path": f"/domain/zone/{ZONE}/record"},
        {"method": "DELETE", "path": f"/domain/zone/{ZONE}/record/*"},
        {"method": "POST", "path": f"/domain/zone/{ZONE}/refresh"},
    ]


def test_access_rules_bad_zone_raises_naming_dns_zone():
    with pytest.raises(c.AcmeConfigError, match="^dns_zone"):
        c.access_rules("*.villeparisis.fr")
