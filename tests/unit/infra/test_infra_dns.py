"""DNS: every site name -> that site's own public IP (R-HOST-2)."""
from __future__ import annotations

from infra.dns import TTL, plan_records

RECORD = "ovh:Domain/zoneRecord:ZoneRecord"


def test_dns_every_name_points_to_its_sites_ip(built):
    stack, b = built
    served = {}
    for r in b.of_type(RECORD):
        p = r.inputs
        assert (p["zone"], p["fieldtype"], p["ttl"]) == (stack.ovh.dns_zone, "A", TTL)
        served[f"{p['subdomain']}.{p['zone']}" if p.get("subdomain") else p["zone"]] = p["target"]
    assert served == {n: str(s.public_ip) for s in stack.sites for n in s.names}


def test_dns_prod_apex_record_has_no_subdomain(builds):
    _, b = builds["prod"]
    apex = b.get(RECORD, "dns-villeparisis.fr").inputs
    assert "subdomain" not in apex and apex["target"] == "198.51.100.17"
    assert b.get(RECORD, "dns-www.villeparisis.fr").inputs["subdomain"] == "www"


def test_dns_preprod_names_are_subdomains_of_the_zone(builds):
    stack, _ = builds["preprod"]
    assert {r.subdomain for r in plan_records(stack)} == {
        "preprod", "www.preprod", "participation.preprod"}


def test_dns_records_output_matches_registered_records(built):
    stack, b = built
    assert b.outputs["dns_records"] == {n: str(s.public_ip) for s in stack.sites for n in s.names}
