"""Code releases in the lab: a new release goes live and rolls back with no failed request
while a client keeps asking; a broken release never replaces the live one; the same code
twice changes nothing; a release whose database update fails after changing the database
puts code AND database back (fault drill 4 of issue 11; R-INC-1, R-MNT-2). The deploy and
rollback times are printed (pytest -s) for the report."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from lab.testing import LabSession

from .test_web_support import FIXTURE, WebTier, release, rollback, web_tier

pytestmark = pytest.mark.lab
SITE = "participation"


@pytest.fixture
def tier(lab: LabSession) -> WebTier:
    return web_tier(lab)


def _variant(tmp_path: Path, marker: str, edit=None) -> Path:  # type: ignore[no-untyped-def]
    tree = tmp_path / marker
    shutil.copytree(FIXTURE, tree)
    (tree / "RELEASE").write_text(marker + "\n")
    if edit:
        edit(tree)
    return tree


def _live(tier: WebTier) -> str:
    status, body, _ = tier.curl(SITE, "/")
    assert status == 200, body
    return json.loads(body)["release"]


class Loop:
    """Clients asking for the page through the proxy, as fast as they can, counting answers.
    curl with keep-alive over HTTP/2: one TLS session per client, many requests."""

    def __init__(self, tier: WebTier, clients: int = 3) -> None:
        s = tier.site(SITE)
        self.argv = ["curl", "-sS", "--cacert", str(tier.ca), "--resolve",
                     f"{s['domain']}:443:{s['public_ip']}", "-w", "%{http_code}\\n"]
        self.url = f"https://{s['domain']}/"
        self.codes: Counter[str] = Counter()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        while not self.stop.is_set():
            # 20 requests per curl process, on one connection; -o applies to one URL each
            batch = [arg for _ in range(20) for arg in ("-o", "/dev/null", self.url)]
            out = subprocess.run([*self.argv, *batch], capture_output=True, text=True,
                                 timeout=120).stdout.split()
            self.codes.update(out or ["curl-failed"])

    def __enter__(self) -> Loop:
        for t in self.threads:
            t.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *_exc: object) -> None:
        time.sleep(0.5)
        self.stop.set()
        for t in self.threads:
            t.join()

    @property
    def failed(self) -> int:
        return sum(n for code, n in self.codes.items() if code != "200")


def test_release_same_code_again_changes_nothing(tier):
    assert release(tier.lab, SITE).action == "none"


def test_new_release_then_rollback_without_a_failed_request(tier, tmp_path):
    before = _live(tier)
    with Loop(tier) as loop:
        t0 = time.monotonic()
        new = release(tier.lab, SITE, _variant(tmp_path, "fixture-2"))
        deploy_s = time.monotonic() - t0
        assert new.action == "stage" and _live(tier) == "fixture-2"
        t1 = time.monotonic()
        back = rollback(tier.lab, SITE)
        rollback_s = time.monotonic() - t1
        assert _live(tier) == before
    total = sum(loop.codes.values())
    print(f"\nrelease: deploy {deploy_s:.2f}s (host {new.host['seconds']}s), rollback "
          f"{rollback_s:.2f}s (host {back.host['seconds']}s), {total} requests during, "
          f"answers {dict(loop.codes)}")
    assert total > 50 and loop.failed == 0, dict(loop.codes)
    assert back.release == new.previous


def test_release_with_settings_not_including_local_is_refused_live_untouched(tier, tmp_path):
    before = _live(tier)

    def drop_include(tree: Path) -> None:
        (tree / "web/sites/default/settings.php").write_text("<?php\n$databases = [];\n")
    with Loop(tier, clients=1) as loop:
        with pytest.raises(Exception, match="does not include settings.local.php"):
            release(tier.lab, SITE, _variant(tmp_path, "fixture-bad", drop_include))
    assert _live(tier) == before and loop.failed == 0


def test_release_failing_at_runtime_is_switched_back(tier, tmp_path):
    before = _live(tier)

    def fatal(tree: Path) -> None:  # parses (php -l passes), dies on every request
        index = tree / "web/index.php"
        index.write_text(index.read_text().replace(
            "declare(strict_types=1);", "declare(strict_types=1);\nthrow new Error('broken');"))
    with pytest.raises(Exception, match="failed its health check"):
        release(tier.lab, SITE, _variant(tmp_path, "fixture-fatal", fatal))
    assert _live(tier) == before
    log = tier.lab.sudo(tier.host_of(SITE), f"tail -2 /srv/{SITE}/releases.log").stdout
    assert log.split("\n")[-2].endswith("auto-rollback")


def _sql(tier: WebTier, query: str) -> str:
    db = tier.site(SITE)["database"]
    return tier.lab.sudo(tier.host_of(SITE), "mariadb --batch --skip-column-names "
                         f"--protocol=socket {db} -e {shlex.quote(query)}").stdout.strip()


def test_release_failing_after_db_change_puts_code_and_db_back(tier, tmp_path):
    """Fault drill 4: release N (schema 2), a row written, release N+1 (schema 3) whose update
    fails after changing the database: exit non-zero, the database back at N's schema and
    content, `current` on N, the site answers 200 with N's content, the record says why."""
    def schema(version: int, fail: bool = False):  # type: ignore[no-untyped-def]
        def edit(tree: Path) -> None:
            (tree / "SCHEMA_VERSION").write_text(f"{version}\n")
            if fail:
                (tree / "FAIL_UPDATE_AFTER_DB_CHANGE").write_text("fault drill 4\n")
        return edit

    n = release(tier.lab, SITE, _variant(tmp_path, "fixture-schema-2", schema(2)))
    assert n.action == "stage" and _live(tier) == "fixture-schema-2"
    assert _sql(tier, "SELECT version FROM hosting_fixture_schema WHERE id=1") == "2"
    _sql(tier, "REPLACE INTO fixture_state (name, value) VALUES ('drill4', 'written under N')")
    with Loop(tier) as loop:
        t0 = time.monotonic()
        with pytest.raises(Exception) as err:
            release(tier.lab, SITE, _variant(tmp_path, "fixture-schema-3", schema(3, True)))
        failed_s = time.monotonic() - t0
    msg = str(err.value)
    assert "failed at post-deploy" in msg and "code and database rolled back" in msg, msg
    # the database: N's schema version and tables, N's content, the failed update's row gone
    assert _sql(tier, "SELECT version FROM hosting_fixture_schema WHERE id=1") == "2"
    assert _sql(tier, "SHOW TABLES LIKE 'fixture_update_3'") == ""
    assert _sql(tier, "SELECT value FROM fixture_state WHERE name='drill4'") == "written under N"
    assert _sql(tier, "SELECT COUNT(*) FROM fixture_state WHERE name='failed_update_ran'") == "0"
    # the failed release's tables: kept aside as a root-only dump, no extra database left
    db = tier.site(SITE)["database"]
    assert _sql(tier, f"SHOW DATABASES LIKE '{db}\\_%'") == ""
    host = tier.host_of(SITE)
    # the code: N live, serving N's content, out of maintenance
    current = tier.lab.sudo(host, f"readlink /srv/{SITE}/current").stdout.strip()
    assert current == f"releases/{n.release}"
    status, body, _ = tier.curl(SITE, "/")
    page = json.loads(body)
    assert status == 200 and page["release"] == "fixture-schema-2", body
    assert page["schema_version"] == 2 and page["maintenance"] is False
    # the record
    rec = json.loads(tier.lab.sudo(host, f"tail -1 /srv/{SITE}/releases.jsonl").stdout)
    assert rec["result"] == "rolled back" and rec["failed_step"] == "post-deploy"
    assert "fixture update failed after changing the database" in rec["error"]
    assert rec["rolled_back"] == {"code": True, "db": True} and rec["maintenance"] is False
    assert rec["db_restore"]["versions"]["hosting_fixture_schema"] == [["1", "2"]]
    snap = rec["db_snapshot"]["path"]
    mode = tier.lab.sudo(host, f"stat -c '%a %U' {shlex.quote(snap)}").stdout.split()
    assert mode == ["600", "root"] and not snap.startswith(f"/srv/{SITE}/")
    kept = rec["db_restore"]["failed_tables"]
    assert kept == snap[:-4] + ".failed.sql"
    assert "CREATE TABLE `fixture_update_3`" in tier.lab.sudo(host, f"cat {kept}").stdout
    total = sum(loop.codes.values())
    print(f"\nfailed release: {failed_s:.2f}s end to end; host {rec['seconds']}s of which "
          f"rollback {rec['rollback_seconds']}s; steps {rec['timings']}; "
          f"{total} requests during, answers {dict(loop.codes)}")
    assert total > 20


def test_release_whose_way_back_fails_stays_in_maintenance(tier, tmp_path):
    """The way back itself fails: the update fails after changing the database AND damages the
    public files (which no database rollback brings back), so the previous release is unhealthy
    after code and database went back. The command exits non-zero naming both errors, the site
    stays in maintenance (Drupal's mode on, and the proxy's maintenance page), nothing lost."""
    host = tier.host_of(SITE)
    proxy = tier.lab.hosts_with_role("proxy")[0]
    flag = f"/var/lib/hosting/maintenance/{SITE}"
    marker = f"/srv/{SITE}/shared/files/fixture-broken"
    before = _sql(tier, "SELECT version FROM hosting_fixture_schema WHERE id=1")
    live = tier.lab.sudo(host, f"readlink /srv/{SITE}/current").stdout.strip()
    _sql(tier, "REPLACE INTO fixture_state (name, value) VALUES ('drill4b', 'kept')")

    def breaks(tree: Path) -> None:
        (tree / "SCHEMA_VERSION").write_text(f"{int(before) + 1}\n")
        (tree / "FAIL_UPDATE_AFTER_DB_CHANGE").write_text("")
        (tree / "BREAK_FILES_ON_FAILED_UPDATE").write_text("")
    try:
        with pytest.raises(Exception) as err:
            release(tier.lab, SITE, _variant(tmp_path, "fixture-breaks-files", breaks))
        msg = str(err.value)
        assert "failed at post-deploy" in msg and "stays in maintenance" in msg, msg
        assert "rollback-health" in msg and f"proxy maintenance page ON for {SITE}" in msg, msg
        rec = json.loads(tier.lab.sudo(host, f"tail -1 /srv/{SITE}/releases.jsonl").stdout)
        assert rec["result"] == "rollback failed" and rec["maintenance"] is True
        assert rec["rolled_back"] == {"code": True, "db": True}
        assert [e.split(":")[0] for e in rec["errors"]] == ["post-deploy", "rollback-health"]
        # visitors get the maintenance page; nothing lost underneath
        status, body, _ = tier.curl(SITE, "/")
        assert status == 503 and "Site en maintenance" in body, (status, body)
        assert _sql(tier, "SELECT value FROM fixture_state WHERE name='maintenance_mode'") == "1"
        assert _sql(tier, "SELECT version FROM hosting_fixture_schema WHERE id=1") == before
        assert _sql(tier, "SELECT value FROM fixture_state WHERE name='drill4b'") == "kept"
        assert tier.lab.sudo(host, f"readlink /srv/{SITE}/current").stdout.strip() == live
    finally:  # the admin's repair: the damaged file, Drupal's mode, the proxy flag
        tier.lab.sudo(host, f"rm -f {marker}")
        _sql(tier, "REPLACE INTO fixture_state (name, value) VALUES ('maintenance_mode', '0')")
        tier.lab.sudo(proxy, f"rm -f {flag}")
    status, body, _ = tier.curl(SITE, "/")
    assert status == 200 and json.loads(body)["maintenance"] is False, body
