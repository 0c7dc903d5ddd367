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
    assert [(x.lineage, x.names) for x in acme.certificates] == \
        [("villeparisis.fr", ("*.villeparisis.fr", "villeparisis.fr"))]
    assert acme.directory == c.PRODUCTION
    assert (acme.key_type, acme.elliptic_curve) == ("ecdsa", "secp256r1")
    assert acme.certificates[0].live_dir == "/etc/letsencrypt/live/villeparisis.fr"
    assert not acme.lab


def test_acme_prod_stack_file_one_set_wildcard_and_apex(prod: Inventory):
    acme = c.acme(prod)
    assert acme is not None and acme.directory == c.PRODUCTION
    assert [(x.lineage, x.names) for x in acme.certificates] == \
        [("villeparisis.fr", ("villeparisis.fr", "*.villeparisis.fr"))]


def test_acme_preprod_stack_file_staging_directory(preprod: Inventory):
    acme = c.acme(preprod)
    assert acme is not None and acme.directory == c.STAGING
    assert [x.lineage for x in acme.certificates] == ["preprod.villeparisis.fr"]


TWO = {**ON, "certificates": [{"names": ["participation.villeparisis.fr"]},
                              {"name": "main", "names": ["villeparisis.fr",
                                                         "*.villeparisis.fr"]}]}


def test_from_doc_two_sets_two_lineages_in_config_order():
    acme = c.from_doc(TWO, SITES, ZONE)
    assert acme is not None
    assert [(x.lineage, x.live_dir, x.proxy_cert) for x in acme.certificates] == [
        ("participation.villeparisis.fr",
         "/etc/letsencrypt/live/participation.villeparisis.fr",
         f"{c.PROXY_CERT_DIR}/participation.villeparisis.fr/fullchain.pem"),
        ("main", "/etc/letsencrypt/live/main", f"{c.PROXY_CERT_DIR}/main/fullchain.pem")]


def test_site_certificates_first_covering_set_per_site(prod: Inventory):
    inv = with_acme(prod, TWO)
    served = c.site_certificates(c.acme(inv), inv)
    assert {site: cert.lineage for site, cert in served.items()} == \
        {"participation": "participation.villeparisis.fr", "villeparisis": "main"}


def test_site_certificates_no_set_covers_site_keeps_fallback(prod: Inventory):
    inv = with_acme(prod, {**ON, "certificates": [{"names": ["participation.villeparisis.fr"]}]})
    served = c.site_certificates(c.acme(inv), inv)
    assert set(served) == {"participation"}  # villeparisis: the uploaded pair


def test_proxy_lineages_names_paths_and_each_sites_probe(prod: Inventory):
    inv = with_acme(prod, TWO)
    doc = c.proxy_lineages(c.acme(inv), inv)
    part = inv.site("participation")
    assert doc["lineages"]["participation.villeparisis.fr"] == {
        "names": ["participation.villeparisis.fr"],
        "cert": f"{c.PROXY_CERT_DIR}/participation.villeparisis.fr/fullchain.pem",
        "key": f"{c.PROXY_CERT_DIR}/participation.villeparisis.fr/privkey.pem",
        "probes": [[part.public_ip, part.domain]]}
    main = inv.site("villeparisis")
    assert doc["lineages"]["main"]["probes"] == [[main.public_ip, main.domain]]


def test_from_doc_staging_name_resolves_to_staging_url():
    acme = c.from_doc({**ON, "directory": "staging"}, SITES, ZONE)
    assert acme is not None and acme.directory == c.STAGING


@pytest.mark.parametrize(("change", "field"), [
    ({"email": "nobody"}, "acme.email"),
    ({"names": ["villeparisis.fr"]}, "acme.names"),
    ({"certificates": [{"names": ["*.example.org"]}]}, "acme.certificates[0].names[0]"),
    ({"certificates": [{"names": ["bad name"]}]}, "acme.certificates[0].names[0]"),
    ({"certificates": [{"names": [3]}]}, "acme.certificates[0].names[0]"),
    ({"certificates": [{"names": []}]}, "acme.certificates[0].names"),
    ({"certificates": [{"names": ["villeparisis.fr"], "x": 1}]}, "acme.certificates[0].x"),
    ({"certificates": [{"names": ["villeparisis.fr"], "name": "a/b"}]},
     "acme.certificates[0].name"),
    ({"certificates": [{"names": ["villeparisis.fr"]}, {"names": ["villeparisis.fr"]}]},
     "acme.certificates[1].name"),
    ({"certificates": "villeparisis.fr"}, "acme.certificates"),
    ({"rsa_key_size": 1024}, "acme.rsa_key_size"),
    ({"directory": "http://acme.example/dir"}, "acme.directory"),
    ({"elliptic_curve": "secp521r1"}, "acme.elliptic_curve"),
    ({"key_type": "dsa"}, "acme.key_type"),
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
