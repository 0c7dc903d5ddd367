"""The incident record on ops in the lab (R-INC-4, issue 13): a sample Alertmanager
notification POSTed to the receiver lands in the log without its personal data; `fab restore`
appends its record through the admin's SSH access; `fab incidents` reads them back."""
from __future__ import annotations

import json
import time

import pytest

from lab.testing import LabSession
from roles.monitoring import incidents

from .test_backup_support import Chain, backup_chain
from .test_web_support import deploy, lab_env

pytestmark = pytest.mark.lab
SITE = "villeparisis"


@pytest.fixture
def chain(lab: LabSession) -> Chain:
    chain = backup_chain(lab)
    report = deploy(lab, ["ops"])
    assert report.ok, [r.error or [o.error for o in r.outcomes if not o.ok]
                       for r in report.results if not r.ok]
    return chain


def _log(chain: Chain) -> list[dict]:
    proc = chain.lab.root_exec("ops", ["cat", incidents.LOG], check=False)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _fab_incidents(lab: LabSession) -> list[dict]:
    from tasks.incident_record import ByName, read_incidents
    from tasks.web_tasks import connected

    with lab_env(lab), connected("lab") as (inv, connect):
        return read_incidents(inv, ByName(connect))


def test_receiver_sample_notification_lands_in_log_without_personal_data(chain: Chain) -> None:
    marker = f"H5Drill{int(time.time())}"
    payload = {
        "version": "4", "status": "firing", "receiver": "incidents", "groupKey": "{}:{}",
        "alerts": [{"status": "firing",
                    "labels": {"alertname": marker, "severity": "warning", "site": SITE,
                               "owner": "jane.doe@example.org"},
                    "annotations": {"summary": "drill", "description": "call jane.doe@example.org"},
                    "startsAt": "2026-12-04T20:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": "abc123"}]}
    status = ""
    for _ in range(30):  # the deploy may have just restarted it
        up = chain.lab.root_exec("ops", ["curl", "-sf", "--max-time", "5",
                                         f"http://{incidents.LISTEN}/healthz"], check=False)
        if up.returncode == 0:
            break
        status = chain.lab.root_exec("ops", ["systemctl", "status", "--no-pager", "-n", "20",
                                             incidents.UNIT], check=False).stdout
        time.sleep(1)
    assert up.returncode == 0, status
    posted = chain.lab.root_exec(
        "ops", ["curl", "-sf", "--max-time", "10", "-H", "Content-Type: application/json",
                "--data-binary", "@-", f"http://{incidents.LISTEN}/alertmanager"],
        check=False, input=json.dumps(payload))
    assert posted.returncode == 0 and json.loads(posted.stdout) == {"appended": 1}, posted
    [record] = [r for r in _log(chain) if r.get("what") == marker]
    assert (record["status"], record["site"], record["severity"]) == ("firing", SITE, "warning")
    assert "jane.doe" not in json.dumps(record)
    # the receiver listens on the loopback only: not reachable on ops' private address
    ip = chain.lab.host("ops")["private_ip"]
    outside = chain.lab.root_exec("ops", ["curl", "-s", "--max-time", "5",
                                          f"http://{ip}:9099/healthz"], check=False)
    assert outside.returncode != 0
    assert any(r.get("what") == marker for r in _fab_incidents(chain.lab))


def test_fab_restore_appends_a_record_on_ops(chain: Chain) -> None:
    from tasks.backup_restore import run_restore

    assert chain.run_backup(SITE).returncode == 0
    before = len(_log(chain))
    lines: list[str] = []
    with lab_env(chain.lab):
        result = run_restore("lab", SITE, source="local", emit=lines.append)
    assert result["ok"], lines
    assert result["incident_recorded"] is True, lines
    new = _log(chain)[before:]
    [record] = [r for r in new if r.get("kind") == "restore"]
    assert (record["site"], record["tier"], record["result"]) == (SITE, "local", "ok")
    assert record["host"] == chain.web(SITE) and record["seconds"] > 0
    assert record["go_back"].startswith(f"fab restore --site {SITE}")


def test_fab_restore_that_fails_still_appends_a_failed_record(chain: Chain) -> None:
    from tasks.backup_restore import RestoreTaskError, run_restore

    before = len(_log(chain))
    lines: list[str] = []
    with lab_env(chain.lab):
        try:  # no backup is that old: the restore fails on the host, nothing is touched
            result = run_restore("lab", SITE, source="local", at="2001-01-01",
                                 emit=lines.append)
        except RestoreTaskError:
            result = {"ok": False}
    assert result["ok"] is False
    new = [r for r in _log(chain)[before:] if r.get("kind") == "restore"]
    assert [(r["site"], r["result"], r["status"]) for r in new] == [(SITE, "failed", "failed")]
    assert new[0]["errors"], new[0]
    # a failed restore leaves the site in maintenance at the proxy: lift it for the next tests
    from roles.proxy.config import MAINTENANCE_DIR

    chain.lab.root_exec(chain.lab.hosts_with_role("proxy")[0],
                        ["rm", "-f", f"{MAINTENANCE_DIR}/{SITE}"])


def test_failed_release_appends_a_record_and_its_metric_says_failed(chain: Chain,
                                                                    tmp_path) -> None:
    import shutil

    from backup.metrics import parse_text

    from .test_web_support import FIXTURE, release

    site = "participation"
    tree = tmp_path / "fatal"
    shutil.copytree(FIXTURE, tree)
    (tree / "RELEASE").write_text("fixture-fatal\n")
    index = tree / "web/index.php"  # parses (php -l passes), dies on every request
    index.write_text(index.read_text().replace(
        "declare(strict_types=1);", "declare(strict_types=1);\nthrow new Error('broken');"))
    before = len(_log(chain))
    with pytest.raises(Exception, match="failed its health check"):
        release(chain.lab, site, tree)
    [record] = [r for r in _log(chain)[before:] if r.get("kind") == "release"]
    assert (record["site"], record["status"], record["host"]) == (
        site, "failed", chain.web(site))
    assert "health check" in record["errors"][0]
    prom = chain.root(chain.web(site)) / "var/lib/prometheus/node-exporter" / \
        f"hosting_site_{site}.prom"
    s = parse_text(prom.read_text())
    assert s[("hosting_site_release_last_success", (("site", site),))] == 0
    live = [dict(labels) for (name, labels) in s if name == "hosting_site_release_info"]
    assert live and live[0]["version"] == "fixture-1"  # switched back: the old release serves
