"""`fab update` in the lab (issue 15; R-MNT-1, R-MNT-2, R-HOST-3, R-GDPR-1/4, R-INC-4).

Preprod is a second lab built from Pulumi.preprod.yaml (its own prefix, names and subnets,
LAB_TEST_PREPROD_*), up for this module only, with its proxy and web hosts deployed; prod is
the session's lab. Every update ships the fixture (tests/fixtures/site) with its own RELEASE
and flags:
  - a good update goes preprod -> prod, the same sha256 on both hosts, prod serves it, the
    maintenance window is reported, preprod holds no production e-mail address, the update
    log on ops has the run;
  - an update whose preprod checks fail (FAIL_SMOKE_ON the preprod domain: a real PHP fatal
    error on the smoke URL) never touches prod;
  - an update that passes preprod and fails on prod (FAIL_SMOKE_ON the prod domain) is
    reverted: prod's code and database (its schema version, the update's table) are back;
  - bad input (unknown site, a concurrent update) is refused before anything changes.
At the end prod runs the fixture's own release again, for the tests after this module.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit import checks as c
from audit.checks import Context, Fact
from lab.config import REPO_ROOT
from lab.testing import TEST_PREFIX, LabSession, lab_session, lab_test_config
from roles.monitoring.incidents import UPDATE_LOG
from tasks.incident_record import ByName, read_incidents
from tasks.update_plan import Smoke, UpdatePolicy
from tasks.update_run import Side, UpdateError, lock, run_update, unlock
from tasks.web_tasks import connected

from .test_backup_support import backup_chain
from .test_web_support import FIXTURE, deploy, release

pytestmark = pytest.mark.lab
SITE = "villeparisis"
PREPROD = dict(
    # Not the session lab's prefix followed by more letters: every name of one lab must
    # not start with the other's prefix.
    prefix=os.environ.get("LAB_TEST_PREPROD_PREFIX", "pre" + TEST_PREFIX[:6]),
    # Beside the session lab's ranges (lab.testing), and not `make lab`'s (lab.config).
    public_cidr=os.environ.get("LAB_TEST_PREPROD_PUBLIC_CIDR", "203.0.113.0/26"),
    private_cidr=os.environ.get("LAB_TEST_PREPROD_PRIVATE_CIDR", "10.81.0.0/24"))
PROD_EMAILS = ("alice.martin@villeparisis.fr", "bruno.petit@example.com",
               "c.durand@mail.example.org")


@pytest.fixture(scope="module")
def preprod() -> Iterator[LabSession]:
    cfg = lab_test_config(stack_file=REPO_ROOT / "Pulumi.preprod.yaml", **PREPROD)
    with lab_session(cfg) as session:
        hosts = session.hosts_with_role("proxy", "web")
        report = deploy(session, hosts)
        if not report.ok:  # the apt proxy's upstream may answer 503 once
            report = deploy(session, hosts)
        assert report.ok, [r.error or [o.error for o in r.outcomes if not o.ok]
                           for r in report.results if not r.ok]
        yield session


@pytest.fixture(scope="module")
def prod(lab_session_: LabSession) -> Iterator[LabSession]:
    lab = lab_session_
    lab.ensure_up()
    backup_chain(lab)  # the export's fresh backup needs the runner set up
    report = deploy(lab, lab.hosts_with_role("ops"))  # the update log's receiver
    assert report.ok
    yield lab
    release(lab, SITE)  # the fixture's own release again, for the tests after this module


def sides(stack: ExitStack, prod: LabSession, pre: LabSession) -> tuple[Side, Side]:
    out = []
    for session, env in ((prod, "lab"), (pre, "preprod")):
        inv, connect = stack.enter_context(connected("lab", str(session.inventory_path)))
        out.append(Side(env, inv, connect, str(session.inventory_path)))
    return out[0], out[1]


def artifact(tmp_path: Path, name: str, schema: int, fail_on: str = "") -> Path:
    tree = tmp_path / name
    shutil.copytree(FIXTURE, tree, symlinks=True)
    (tree / "RELEASE").write_text(name + "\n")
    (tree / "SCHEMA_VERSION").write_text(f"{schema}\n")
    if fail_on:
        (tree / "FAIL_SMOKE_ON").write_text(fail_on + "\n")
    return tree


def sql(session: LabSession, host: str, query: str) -> str:
    proc = session.root_exec(host, ["mariadb", "--protocol=socket", "-N", "-B", "-e", query],
                             check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def web_host(session: LabSession) -> str:
    return next(s["host"] for s in session.inventory["sites"] if s["name"] == SITE)


def domain(session: LabSession) -> str:
    return next(s["domain"] for s in session.inventory["sites"] if s["name"] == SITE)


def live_release(session: LabSession) -> str:
    return session.root_exec(web_host(session), ["readlink", f"/srv/{SITE}/current"]
                             ).stdout.strip().rsplit("/", 1)[-1]


def schema(session: LabSession) -> int:
    out = sql(session, web_host(session),
              f"SELECT version FROM {SITE}.hosting_fixture_schema WHERE id = 1")
    return int(out or 0)


def settings() -> UpdatePolicy:
    return UpdatePolicy(smoke=(Smoke("/news", "news of villeparisis"),),
                    sanitize=("drupal", "fixture"))


def update(prod: LabSession, pre: LabSession, tree: Path, tmp_path: Path, **kw):
    with ExitStack() as stack:
        p, q = sides(stack, prod, pre)
        return run_update(p, q, SITE, tree.name, settings(), str(tree),
                          out_dir=tmp_path / "reports", emit=print, **kw)


def test_update_good_ships_one_artifact_to_preprod_then_prod(prod, preprod, tmp_path):
    # The prod site as visitors left it: its personal data seeded by a first visit.
    page = prod.root_exec(web_host(prod), ["curl", "-sS", "-H", f"Host: {domain(prod)}",
                                           "http://127.0.0.1/"]).stdout
    assert '"site":"villeparisis"' in page, page
    assert "alice.martin@villeparisis.fr" in sql(
        prod, web_host(prod), f"SELECT email FROM {SITE}.hosting_fixture_people")
    before, version = live_release(prod), schema(prod)
    tree = artifact(tmp_path, "fixture-update-good", version)
    report = update(prod, preprod, tree, tmp_path)
    print(f"steps (s): {report.steps}; maintenance window {report.maintenance_seconds} s")
    assert report.outcome == "live", report.errors
    assert report.from_release == before and report.to_release == live_release(prod)
    assert all(c["ok"] for c in report.qualification["checks"]), report.qualification
    assert all(c["ok"] for c in report.prod_checks), report.prod_checks
    assert report.maintenance_seconds is not None and report.maintenance_seconds > 0
    sha = report.artifact_sha256
    for session in (prod, preprod):  # the same bytes on both hosts, checked there
        out = session.root_exec(web_host(session), ["sha256sum", f"/srv/{SITE}/incoming/"
                                                    f"{sha}.tar.gz"]).stdout
        assert out.split()[0] == sha
    code = prod.root_exec(web_host(prod), ["curl", "-sS", "-H", f"Host: {domain(prod)}",
                                           "http://127.0.0.1/"]).stdout
    assert '"release":"fixture-update-good"' in code
    # Preprod got prod's data, sanitized: the copy is there, no production address left.
    people = sql(preprod, web_host(preprod),
                 f"SELECT CONCAT(name, ' ', email, ' ', IFNULL(note, '')) FROM "
                 f"{SITE}.hosting_fixture_people")
    assert people.count("@example.invalid") == 3, people
    dump = preprod.root_exec(web_host(preprod), ["mariadb-dump", "--protocol=socket",
                                                 SITE]).stdout
    assert "content of villeparisis" in dump  # prod's own content, copied
    for address in PROD_EMAILS:
        assert address not in dump
    assert report.qualification["sanitize"]["leftover"] == {}
    timer = preprod.root_exec(web_host(preprod), ["systemctl", "is-active",
                                                  f"hosting-cron-{SITE}.timer"], check=False)
    assert timer.stdout.strip() == "active"  # stopped during the copy, started after
    # One line in the update log on ops.
    with connected("lab", str(prod.inventory_path)) as (inv, connect):
        logged = read_incidents(inv, ByName(connect), UPDATE_LOG)
    assert logged[-1]["artifact"] == sha and logged[-1]["result"] == "live"
    # ... which the audit grades R-MNT-1 and R-MNT-2 from (the other site has none: manual).
    ctx = Context({"updates": Fact(True, logged)}, inv, datetime.now(UTC))
    for check in (c.update_qualified, c.update_window):
        graded = {e.saw.split(":")[0]: e.status for e in check(ctx)}
        assert graded == {SITE: "pass", "participation": "manual"}, check(ctx)
    assert len(list((tmp_path / "reports").glob("update-villeparisis-*.md"))) == 1


def test_update_failing_on_preprod_never_touches_prod(prod, preprod, tmp_path):
    before, version = live_release(prod), schema(prod)
    tree = artifact(tmp_path, "fixture-update-bad-preprod", version + 1, domain(preprod))
    report = update(prod, preprod, tree, tmp_path)
    assert report.outcome == "qualification failed"
    failed = [c for c in report.qualification["checks"] if not c["ok"]]
    assert {c["name"] for c in failed} >= {"smoke /news", "no new PHP fatal error"}, failed
    assert report.prod_checks == [] and report.to_release is None
    assert live_release(prod) == before and schema(prod) == version


def test_update_failing_on_prod_reverts_code_and_database(prod, preprod, tmp_path):
    before, version = live_release(prod), schema(prod)
    tree = artifact(tmp_path, "fixture-update-bad-prod", version + 1, domain(prod))
    report = update(prod, preprod, tree, tmp_path)
    assert all(c["ok"] for c in report.qualification["checks"])  # preprod passed
    assert report.outcome == "reverted", report.errors
    assert any("smoke /news" in e for e in report.errors)
    assert live_release(prod) == before
    assert schema(prod) == version  # the update's schema change went back with the code
    tables = sql(prod, web_host(prod), f"SHOW TABLES FROM {SITE} LIKE 'fixture_update_"
                                       f"{version + 1}'")
    assert tables == ""
    page = prod.root_exec(web_host(prod), ["curl", "-sS", "-H", f"Host: {domain(prod)}",
                                           "http://127.0.0.1/"]).stdout
    assert '"maintenance":false' in page
    with connected("lab", str(prod.inventory_path)) as (inv, connect):
        incidents = read_incidents(inv, ByName(connect))
    assert incidents[-1]["kind"] == "update" and incidents[-1]["result"] == "reverted"


def test_update_bad_input_refused_before_anything_changes(prod, preprod, tmp_path):
    before = live_release(prod)
    with pytest.raises(UpdateError, match="--site 'nosuchsite'"):
        with ExitStack() as stack:
            p, q = sides(stack, prod, preprod)
            run_update(p, q, "nosuchsite", "x", settings(), str(FIXTURE))
    with ExitStack() as stack:
        p, q = sides(stack, prod, preprod)
        held = lock(p.connect(web_host(prod)), SITE, "someone else")
        try:
            with pytest.raises(UpdateError, match="another update of villeparisis"):
                run_update(p, q, SITE, "x", settings(), str(FIXTURE))
        finally:
            unlock(p.connect(web_host(prod)), held)
    assert live_release(prod) == before
