"""`fab update`'s refusals before anything changes (tasks/update_run.py, tasks/update_tasks.py,
issue 15): prod not at a known release, a concurrent update, a ref that cannot apply, a preprod
that is missing. The whole run is tests/lab/test_update.py's."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tasks import update_run as ur
from tasks import update_tasks as ut
from tasks.update_plan import Smoke, UpdateInputError, UpdatePolicy

SITE = SimpleNamespace(name="villeparisis", codebase={"type": "archive", "url": "https://x/a.tgz",
                                                      "sha256": "0" * 64})


def prod_side(monkeypatch, status):
    monkeypatch.setattr(ur.rel, "status", lambda inv, connect, name: status)
    return ur.Side("prod", inv=None, connect=None)


def test_check_prod_clean_known_release_returned(monkeypatch):
    side = prod_side(monkeypatch, {"current": "r2", "releases": {"r1": "a", "r2": "b"},
                                   "last_record": {"result": "live"}})
    assert ur.check_prod_clean(side, SITE) == "r2"


def test_check_prod_clean_unknown_release_refused(monkeypatch):
    side = prod_side(monkeypatch, {"current": "r9", "releases": {"r1": "a"}})
    with pytest.raises(ur.UpdateError, match="not at a known release"):
        ur.check_prod_clean(side, SITE)


def test_check_prod_clean_left_in_maintenance_refused(monkeypatch):
    side = prod_side(monkeypatch, {"current": "r1", "releases": {"r1": "a"}, "last_record": {
        "result": "rollback failed", "maintenance": True}})
    with pytest.raises(ur.UpdateError, match="repair it before updating"):
        ur.check_prod_clean(side, SITE)


class Conn:
    def __init__(self, mkdir_ok: bool) -> None:
        self.mkdir_ok, self.commands = mkdir_ok, []

    def run(self, command, **_kw):
        self.commands.append(command)
        if "cat " in command:
            return SimpleNamespace(exited=0, stdout="2026-12-05T01:00:00Z v1\n", stderr="")
        return SimpleNamespace(exited=0 if self.mkdir_ok else 1, stdout="", stderr="exists")


def test_lock_free_taken_with_mkdir():
    conn = Conn(True)
    assert ur.lock(conn, "villeparisis", "v2") == "/var/lib/hosting/update-locks/villeparisis"
    assert "sudo -n mkdir -m 0700 /var/lib/hosting/update-locks/villeparisis" in conn.commands[0]


def test_lock_held_refused_naming_the_holder():
    with pytest.raises(ur.UpdateError, match="another update of villeparisis.*01:00:00Z v1"):
        ur.lock(Conn(False), "villeparisis", "v2")


def test_build_ref_on_archive_codebase_refused(tmp_path):
    with pytest.raises(ur.UpdateError, match="--ref 'v2'.*archive"):
        ur._build(None, SITE, tmp_path, "v2", None)


def test_preprod_of_prod_is_preprod():
    assert ut.preprod_of("prod", "", "") == "preprod"


def test_preprod_of_lab_without_inventory_refused():
    with pytest.raises(UpdateInputError, match="--preprod-inventory"):
        ut.preprod_of("lab", "", "")


POLICY = UpdatePolicy(smoke=(Smoke("/", "home"),), sanitize=("fixture",),
                      sanitize_sql=("DELETE FROM y",), allowed_email_domain="model.test",
                      check_command="true")


def test_settings_from_options_replace_the_models_keys():
    s = ut.settings_from(POLICY, ["/news=news"], "drupal, fixture", ["DELETE FROM x"], "",
                         "preprod.test")
    assert s.smoke == (Smoke("/news", "news"),) and s.sanitize == ("drupal", "fixture")
    assert s.sanitize_sql == ("DELETE FROM x",) and s.allowed_email_domain == "preprod.test"
    assert s.check_command == "true"  # not given: the model's


def test_settings_from_no_option_is_the_models_policy():
    assert ut.settings_from(POLICY, [], "", [], "", "") == POLICY


def test_settings_from_bad_smoke_option_refused():
    with pytest.raises(UpdateInputError, match="--smoke"):
        ut.settings_from(POLICY, ["news"], "", [], "", "")
