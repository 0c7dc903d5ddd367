"""The `monitoring:` section of the model (issue 13, R-HOST-4): defaults, values carried into
the inventory, and bad input named by its field."""
from __future__ import annotations

import pytest

from model import ConfigErrors
from model.inventory import HostAddresses, build_inventory, validate_inventory
from model.parse import parse_stack
from model.topology import plan_hosts

FILE = "Pulumi.prod.yaml"


def _with(section):
    def change(c: dict) -> None:
        c["hosting:monitoring"] = section
    return change


def _errors(mutated, section) -> list[tuple[str, str]]:
    with pytest.raises(ConfigErrors) as info:
        parse_stack(mutated(_with(section)), FILE)
    return [(e.path, e.message) for e in info.value.errors]


def test_parse_stack_without_monitoring_uses_defaults(mutated):
    m = parse_stack(mutated(lambda c: None), FILE).monitoring
    assert (m.scrape_interval_seconds, m.retention_days, m.cert_expiry_days) == (30, 30, 21)
    assert (m.backup_stale_local_hours, m.backup_stale_a_hours, m.backup_stale_b_hours) == \
        (26, 26, 192)
    assert m.email is None


def test_parse_stack_monitoring_partial_keeps_other_defaults(mutated):
    m = parse_stack(mutated(_with({"retention_days": 90, "site_slow_ms": 1500})), FILE).monitoring
    assert (m.retention_days, m.site_slow_ms, m.disk_full_percent) == (90, 1500, 90)


def test_parse_stack_monitoring_email_read(mutated):
    email = {"to": ["ops@villeparisis.fr"], "from": "alerts@villeparisis.fr",
             "smarthost": "ssl0.ovh.net:587", "username": "alerts@villeparisis.fr"}
    m = parse_stack(mutated(_with({"email": email})), FILE).monitoring
    assert m.email.to == ("ops@villeparisis.fr",)
    assert (m.email.sender, m.email.smarthost, m.email.require_tls) == \
        ("alerts@villeparisis.fr", "ssl0.ovh.net:587", True)


@pytest.mark.parametrize("section, path, fragment", [
    ({"retention_days": 0}, "monitoring.retention_days", "out of range 1..3650"),
    ({"scrape_interval_seconds": "30s"}, "monitoring.scrape_interval_seconds",
     "must be an integer"),
    ({"disk_full_percent": 100}, "monitoring.disk_full_percent", "out of range 50..99"),
    ({"cert_expiry_days": 21.5}, "monitoring.cert_expiry_days", "must be an integer"),
    ({"scrape_every": 30}, "monitoring.scrape_every", "unknown key"),
    ({"probe_path": "health"}, "monitoring.probe_path", "is not a URL path"),
    ({"body_marker": "(unclosed"}, "monitoring.body_marker", "not a regular expression"),
    ({"body_marker": "a(?=b)"}, "monitoring.body_marker", "Go RE2"),
    ({"email": {"to": ["ops"], "from": "a@b.fr", "smarthost": "smtp:25"}},
     "monitoring.email.to[0]", "not an email address"),
    ({"email": {"to": ["a@b.fr"], "from": "a@b.fr", "smarthost": "smtp"}},
     "monitoring.email.smarthost", "not host:port"),
    ({"email": {"to": ["a@b.fr"], "smarthost": "smtp:25"}}, "monitoring.email.from", "missing"),
    ({"email": {"to": ["a@b.fr"], "from": "a@b.fr", "smarthost": "s:25", "password": "x"}},
     "monitoring.email.password", "unknown key"),
])
def test_parse_stack_bad_monitoring_names_field(mutated, section, path, fragment):
    found = _errors(mutated, section)
    assert any(p == path and fragment in msg for p, msg in found), found


def test_build_inventory_carries_monitoring_with_defaults(mutated):
    stack = parse_stack(mutated(_with({"site_down_after_seconds": 60, "email": {
        "to": ["ops@villeparisis.fr"], "from": "alerts@villeparisis.fr",
        "smarthost": "ssl0.ovh.net:587"}})), FILE)
    hosts = [HostAddresses(p.name, f"10.20.0.{i + 10}") for i, p in enumerate(plan_hosts(stack))]
    doc = build_inventory(stack, source="pulumi", hosts=hosts,
                          site_public_ips={s.name: str(s.public_ip) for s in stack.sites},
                          host_key_fingerprints={h.name: "SHA256:" + "A" * 43 for h in hosts})
    validate_inventory(doc)
    assert doc["monitoring"]["site_down_after_seconds"] == 60
    assert doc["monitoring"]["retention_days"] == 30
    assert doc["monitoring"]["email"]["from"] == "alerts@villeparisis.fr"
    assert "password" not in str(doc["monitoring"])
