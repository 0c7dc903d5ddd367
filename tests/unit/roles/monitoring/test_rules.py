"""`promtool test rules` on the rendered alert rules (issue 13): for every alert, cases that
fire and cases that stay silent (tests/unit/roles/monitoring/rules_test.yml). The rules are the
role's own rendering with the model's defaults, annotations stripped (their templates are
checked by promtool check rules in test_render.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from model.types import Monitoring
from roles.monitoring import render as r
from tests.unit.roles.monitoring.monitoring_helpers import run_tool, tool

CASES = Path(__file__).with_name("rules_test.yml")


def _alerts_tested() -> set[str]:
    doc = yaml.safe_load(CASES.read_text())
    return {t["alertname"] for case in doc["tests"] for t in case["alert_rule_test"]}


def _without_annotations(text: str) -> str:
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return yaml.safe_dump(doc, sort_keys=False)


def test_promtool_test_rules_every_alert_fires_and_stays_silent(tmp_path):
    promtool = tool("promtool")
    (tmp_path / "rules.yml").write_text(_without_annotations(r.rules_yml(Monitoring())))
    shutil.copy(CASES, tmp_path / "rules_test.yml")
    out = run_tool([promtool, "test", "rules", "rules_test.yml"], cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_test_yml_covers_every_alert_with_silent_and_firing_case():
    doc = yaml.safe_load(CASES.read_text())
    rules = yaml.safe_load(r.rules_yml(Monitoring()))
    alerts = {rule["alert"] for g in rules["groups"] for rule in g["rules"]}
    assert _alerts_tested() == alerts
    for name in alerts:
        results = [bool(t["exp_alerts"]) for case in doc["tests"]
                   for t in case["alert_rule_test"] if t["alertname"] == name]
        assert True in results and False in results, name


def test_promtool_test_rules_broken_threshold_fails(tmp_path):
    # The cases can fail: a 50 % disk threshold makes the "89 % used: silent" case fire.
    promtool = tool("promtool")
    rules = r.rules_yml(Monitoring(disk_full_percent=50))
    (tmp_path / "rules.yml").write_text(_without_annotations(rules))
    shutil.copy(CASES, tmp_path / "rules_test.yml")
    out = run_tool([promtool, "test", "rules", "rules_test.yml"], cwd=tmp_path)
    assert out.returncode != 0
    assert "DiskAlmostFull" in out.stdout + out.stderr
