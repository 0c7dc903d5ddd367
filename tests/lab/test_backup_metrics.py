"""Textfile metrics on real lab hosts (issue 13, R-HOST-4): after a real backup run the web
host's .prom file holds the site's metrics with a recent time, and node exporter serves them
to ops over the private network; the storage rotation's unit publishes its check result; the
live release's version and the pending security updates are there too."""
from __future__ import annotations

import time

import pytest

from backup.metrics import parse_text
from lab.testing import LabSession

from .test_backup_support import Chain, backup_chain
from .test_web_support import deploy

pytestmark = pytest.mark.lab
SITE = "villeparisis"
TEXTFILE = "var/lib/prometheus/node-exporter"


@pytest.fixture
def chain(lab: LabSession) -> Chain:
    chain = backup_chain(lab)
    report = deploy(lab, ["ops"])  # the node exporters answer ops only (firewall)
    assert report.ok, [r.error or [o.error for o in r.outcomes if not o.ok]
                       for r in report.results if not r.ok]
    return chain


def _samples(text: str) -> dict[tuple[str, str | None], float]:
    return {(name, dict(labels).get("tier")): v for (name, labels), v in parse_text(text).items()
            if dict(labels).get("site") in (SITE, None)}


def _epoch(restic_time: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(restic_time).timestamp()


def test_backup_run_metrics_recent_and_served_to_ops_by_node_exporter(chain: Chain) -> None:
    # B gets only the weekly and monthly backups: tonight's too if its day began with one
    # (a run after local midnight may not); its newest snapshot is then an older one.
    to_b = bool(chain.tags_of_next_backup(SITE))
    t0 = time.time()
    proc = chain.run_backup(SITE)
    assert proc.returncode == 0, proc.stderr
    web = chain.web(SITE)
    s = _samples((chain.root(web) / TEXTFILE / f"hosting_backup_{SITE}.prom").read_text())
    for tier in ("local", "a", "b"):
        assert s[("hosting_backup_last_run_success", tier)] == 1, tier
        assert t0 - 1 <= s[("hosting_backup_last_run_timestamp_seconds", tier)] <= time.time()
        newest = s[("hosting_backup_last_snapshot_timestamp_seconds", tier)]
        if tier != "b" or to_b:
            assert newest >= t0 - 2, tier
        else:
            on_b = max(_epoch(x["time"]) for x in chain.snapshots(SITE, "b"))
            assert abs(newest - on_b) < 1 and newest < t0, (newest, on_b)
    assert s[("hosting_backup_repository_size_bytes", "local")] > 0
    ip = chain.lab.host(web)["private_ip"]
    scraped = chain.lab.root_exec("ops", ["curl", "-sf", "--max-time", "10",
                                          f"http://{ip}:9100/metrics"], check=False)
    assert scraped.returncode == 0, scraped.stderr
    served = _samples("\n".join(line for line in scraped.stdout.splitlines()
                                if line.startswith("hosting_")))
    assert served[("hosting_backup_last_run_timestamp_seconds", "local")] == \
        s[("hosting_backup_last_run_timestamp_seconds", "local")]


def test_storage_rotation_unit_publishes_check_result_for_node_exporter(chain: Chain) -> None:
    assert chain.run_backup(SITE).returncode == 0
    host = chain.storage("a")
    unit = f"hosting-backup-rotate-{SITE}.service"
    t0 = time.time()
    proc = chain.lab.root_exec(host, ["systemctl", "start", unit], check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr + chain.sh(host, f"journalctl -u {unit} -n 30").stdout
    text = (chain.root(host) / TEXTFILE / f"hosting_backup_{SITE}_a.prom").read_text()
    s = _samples(text)
    assert s[("hosting_backup_repository_check_success", "a")] == 1
    assert s[("hosting_backup_repository_check_timestamp_seconds", "a")] >= t0 - 1
    assert s[("hosting_backup_rotation_success", "a")] == 1
    assert s[("hosting_backup_repository_size_bytes", "a")] > 0
    # the storage user cannot write there itself: only the unit's privileged step did
    denied = chain.lab.root_exec(host, ["runuser", "-u", f"backup-{SITE}", "--", "touch",
                                        f"/{TEXTFILE}/x.prom"], check=False)
    assert denied.returncode != 0


def test_release_and_apt_metrics_present_on_the_web_host(chain: Chain) -> None:
    web = chain.web(SITE)
    release = parse_text((chain.root(web) / TEXTFILE / f"hosting_site_{SITE}.prom").read_text())
    info = [dict(labels) for (name, labels) in release if name == "hosting_site_release_info"]
    assert info and info[0]["site"] == SITE and info[0]["version"] == "fixture-1"
    apt_file = chain.root(web) / TEXTFILE / "hosting_apt.prom"
    deadline = time.monotonic() + 120  # the deploy started the first count without waiting
    while not apt_file.exists() and time.monotonic() < deadline:
        time.sleep(2)
    apt = parse_text(apt_file.read_text())
    assert apt[("hosting_apt_check_success", ())] == 1
    assert apt[("hosting_apt_security_updates_pending", ())] >= 0
