"""What `fab decommission` decides before touching anything (issue 16, R-GDPR-8): the inventory
without the site equals the one the model builds without it, the model change is exactly the
site's item, Pulumi's removals are the site's resources (protected ones flagged), the purge
dates follow the rotation's keep days, and the report says it all."""
from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.inventory import Inventory
from model import load_stack
from model.parse import parse_stack
from tasks import decommission_plan as plan
from tasks.decommission_report import markdown, pulumi_section, write_report
from tasks.decommission_run import Report, serves_nothing
from tests.unit.conftest import ROOT, make_inventory

STACK = ROOT / "Pulumi.prod.yaml"


def test_inventory_without_site_matches_the_model_without_it() -> None:
    full = make_inventory("prod")
    stack = load_stack(STACK)
    reduced_stack = parse_stack(plan.model_without(STACK.read_text(), "participation"),
                                "Pulumi.prod.yaml")
    assert [s.name for s in reduced_stack.sites] == [s.name for s in stack.sites
                                                    if s.name != "participation"]
    got = plan.inventory_without(full.doc, "participation")
    Inventory.from_doc(got)  # valid against the schema
    assert [s["name"] for s in got["sites"]] == ["villeparisis"]
    assert "web-participation" not in [h["name"] for h in got["hosts"]]
    proxy = next(h for h in got["hosts"] if h["role"] == "proxy")
    site_ip = full.site("participation").public_ip
    assert site_ip not in proxy["site_ips"] and proxy["site_ips"]
    assert not [k for k in got["secrets"] if k.endswith("_participation")]
    assert full.doc["sites"][1]["name"] == "participation"  # the input is left as it was


def test_inventory_without_unknown_site_names_the_sites() -> None:
    with pytest.raises(plan.PlanError, match="'nosuch': not in the inventory; sites: "
                                             "villeparisis, participation"):
        plan.inventory_without(make_inventory("prod").doc, "nosuch")


def test_inventory_without_shared_web_host_refused() -> None:
    doc = json.loads(json.dumps(make_inventory("prod").doc))
    web = next(h for h in doc["hosts"] if h["name"] == "web-participation")
    web["sites"].append("villeparisis")
    with pytest.raises(plan.PlanError, match="serves villeparisis too"):
        plan.inventory_without(doc, "participation")


def test_model_without_first_site_keeps_comments_and_the_other_site() -> None:
    text = STACK.read_text()
    new = plan.model_without(text, "villeparisis")
    assert "name: villeparisis" not in new and "- name: participation" in new
    assert "domain: villeparisis.fr" not in new
    removed = set(text.splitlines()) - set(new.splitlines())
    assert all("villeparisis" in line or line.startswith("      ") for line in removed)
    assert len(text.splitlines()) - len(new.splitlines()) == 10
    assert parse_stack(new, "Pulumi.prod.yaml").sites[0].name == "participation"


def test_model_without_unknown_site_refused() -> None:
    with pytest.raises(plan.PlanError, match="0 items named 'nosuch'"):
        plan.model_without(STACK.read_text(), "nosuch")


def test_model_diff_removes_only_the_site_item() -> None:
    diff = plan.model_diff(STACK.read_text(), "participation", "Pulumi.prod.yaml")
    minus = [line for line in diff.splitlines() if line.startswith("-") and
             not line.startswith("---")]
    plus = [line for line in diff.splitlines() if line.startswith("+") and
            not line.startswith("+++")]
    assert minus[0] == "-    - name: participation" and len(minus) == 10 and plus == []


def test_plan_pulumi_participation_removes_its_vm_dns_and_edge_firewall() -> None:
    removals = plan.plan_pulumi(STACK.read_text(), "participation", "Pulumi.prod.yaml")
    names = {r.name for r in removals}
    assert {"vm-web-participation", "dns-participation.villeparisis.fr",
            "edge-fw-site-participation"} <= names
    assert not [n for n in names if "villeparisis.fr" in n and "participation" not in n]
    protected = {r.name for r in removals if r.protect}
    assert "vm-web-participation" in protected
    assert all(r.urn.startswith("urn:pulumi:prod::hosting::") for r in removals)
    argv = plan.unprotect_argv("prod", next(r for r in removals if r.protect))
    assert argv[:5] == ["pulumi", "state", "unprotect", "--stack", "prod"]


def test_purge_dates_model_policy_a_after_14_days_b_after_a_year() -> None:
    now = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    dates = plan.purge_dates(make_inventory("prod").backup_policy, now)
    assert (dates["a"] - now).days == 15 and (dates["b"] - now).days == 366


def test_purge_dates_policy_over_a_year_capped_at_max_age() -> None:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    dates = plan.purge_dates({"monthly_keep_days": 400, "max_age_days": 365}, now)
    assert (dates["b"] - now).days == 366


def sample_report() -> Report:
    r = Report("prod", "participation", "participation.villeparisis.fr", "scheduled")
    r.stage("save", "web-participation", True, "final backup to local, A and B")
    r.stage("web host", "web-participation", True, "",
            [{"what": "deleted", "where": "/srv/participation", "ok": True, "detail": ""}],
            [{"what": "/srv/participation is absent", "ok": True, "detail": ""}])
    r.backups = {"a": {"purge_at": "2026-12-20T03:00:00Z", "host": "backup-a"},
                 "local": {"purged_at": "2026-12-05T03:00:00Z"}}
    r.pulumi = pulumi_section("prod", "participation", STACK)
    r.finished = "2026-12-05T03:01:00Z"
    return r


def test_report_all_ok_lists_deletions_checks_backups_and_pulumi_steps(tmp_path: Path) -> None:
    r = sample_report()
    write_report(r, tmp_path)
    doc = json.loads((tmp_path / "decommission.json").read_text())
    md = (tmp_path / "decommission.md").read_text()
    assert doc["ok"] and doc["errors"] == [] and doc["schema"] == "hosting-decommission/1"
    assert "| web-participation | deleted | `` /srv/participation `` | ok |" in md
    assert "/srv/participation is absent | ok" in md
    assert "purged on 2026-12-20T03:00:00Z by backup-a's own timer" in md
    assert "-    - name: participation" in md and "vm-web-participation (protected)" in md
    assert "pulumi state unprotect --stack prod --yes 'urn:pulumi:prod::hosting::" in md
    assert not list(tmp_path.glob(".*.tmp"))


def test_report_failed_check_named_in_errors_and_not_ok() -> None:
    r = sample_report()
    r.stage("backups A", "backup-a", True, "", [],
            [{"what": "/srv/backups/participation is absent", "ok": False,
              "detail": "still there"}])
    assert not r.ok
    assert r.errors == ["backups A (backup-a): /srv/backups/participation is absent: "
                        "still there"]
    assert "INCOMPLETE" in markdown(r.document())


def test_serves_nothing_closed_port_refused() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound then closed: nothing listens there
    assert serves_nothing("127.0.0.1", (port,), timeout=1) == {str(port): "refused"}


def test_serves_nothing_listening_port_open() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert serves_nothing("127.0.0.1", (port,), timeout=1) == {str(port): "open"}


def test_inventory_without_proxy_role_renders_without_site() -> None:
    from roles.proxy.config import proxy_config

    reduced = Inventory.from_doc(plan.inventory_without(make_inventory("prod").doc,
                                                        "participation"))
    cfg = proxy_config(reduced, reduced.proxy.name)
    assert [s.name for s in cfg.sites] == ["villeparisis"]
    assert dataclasses.asdict(cfg)["sites"][0]["names"][0] == "villeparisis.fr"
