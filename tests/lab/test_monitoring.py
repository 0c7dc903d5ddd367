"""Monitoring in the lab (issue 13, R-HOST-4, R-INC-4): after `fab deploy` of every host and the
fixture site's release, Prometheus on ops scrapes every inventory host and probes both sites,
no alert fires; fault drills make the real alert fire in Prometheus and Alertmanager, reach the
incident log through the webhook, and resolve once service is back. The lab's stack has 5 s
scrapes and 10 s `for:` (lab/plan.py), so a drill takes seconds; each prints its latency."""
from __future__ import annotations

import json
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest

from lab import mail_sink
from lab.testing import LabSession, Probe

from .test_web_support import deploy, web_tier

pytestmark = pytest.mark.lab
OPS = "ops"
INCIDENT_LOG = "/var/log/hosting/incidents/incidents.jsonl"
MAIL_DIR = mail_sink.MAIL_DIR
MAIL_END = "---hosting-lab-mail-end---"
FIRING_TIMEOUT = 120  # the lab's worst case is ~30 s (scrape 5 s + for 10 s + eval + notify)


@dataclass
class Monitoring:
    lab: LabSession
    deploy_seconds: float
    figures: dict[str, Any] = field(default_factory=dict)

    def api(self, port: int, path: str) -> Any:
        out = self.lab.run(OPS, f"curl -fsS --max-time 10 "
                                f"{shlex.quote(f'http://127.0.0.1:{port}{path}')}").stdout
        return json.loads(out)

    def prom(self, path: str) -> Any:
        return self.api(9090, path)["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.prom(f"/api/v1/query?query={quote(expr)}")["result"]

    def firing(self, alertname: str) -> list[dict[str, str]]:
        """Labels of the alerts of that name firing in Prometheus."""
        return [a["labels"] for a in self.prom("/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == alertname and a["state"] == "firing"]

    def all_firing(self) -> list[dict[str, str]]:
        return [a["labels"] for a in self.prom("/api/v1/alerts")["alerts"]
                if a["state"] == "firing"]

    def alertmanager(self, alertname: str) -> list[dict[str, str]]:
        """Labels of the active alerts of that name Alertmanager holds."""
        return [a["labels"] for a in self.api(9093, "/api/v2/alerts?active=true")
                if a["labels"]["alertname"] == alertname]

    def mails(self) -> list[str]:
        """Every message the lab's mail sink on ops kept (lab.mail_sink), oldest first."""
        proc = self.lab.sudo(OPS, f"for f in {MAIL_DIR}/*.eml; do [ -e \"$f\" ] && cat "
                                  f"\"$f\" && echo {MAIL_END}; done; true")
        return [m for m in proc.stdout.split(MAIL_END + "\n") if m.strip()]

    def incidents(self) -> list[dict[str, Any]]:
        proc = self.lab.sudo(OPS, f"cat {INCIDENT_LOG} 2>/dev/null || true")
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def wait_for(what: str, check: Callable[[], Any], timeout: float = FIRING_TIMEOUT,
             every: float = 1.0) -> tuple[Any, float]:
    """Poll `check` until it returns something truthy; (that value, seconds waited)."""
    t0 = time.monotonic()
    error = ""
    while True:
        try:
            value = check()
        except (AssertionError, ValueError) as exc:  # a daemon (re)starting: not yet
            value, error = None, str(exc)[-300:]
        if value:
            return value, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not seen within {timeout} s {error}".rstrip())
        time.sleep(every)


_MON: dict[int, Monitoring] = {}


def monitoring(lab: LabSession) -> Monitoring:
    """Every host deployed (proxy and web hosts with the fixture site first, then storage and
    ops), once per lab session; then wait until Prometheus sees everything up."""
    if id(lab) in _MON and not lab.is_down:
        return _MON[id(lab)]
    web_tier(lab)
    others = [h["name"] for h in lab.inventory["hosts"] if h["role"] in ("storage", "ops")]
    t0 = time.monotonic()
    report = deploy(lab, others)
    if not report.ok:  # the lab's apt proxy sometimes answers 503 from its upstream: once more
        report = deploy(lab, others)
    failures = [f"{r.host}: {r.error or [o.error for o in r.outcomes if not o.ok]}"
                for r in report.results if not r.ok]
    assert report.ok, "deploy failed: " + "; ".join(failures)
    mon = Monitoring(lab, time.monotonic() - t0)
    _, mon.figures["first_all_up_seconds"] = wait_for(
        "every target up", lambda: _targets(mon) and not _down(mon), timeout=180)
    _MON[id(lab)] = mon
    return mon


def _targets(mon: Monitoring) -> list[dict[str, Any]]:
    return mon.prom("/api/v1/targets?state=active")["activeTargets"]


def _down(mon: Monitoring) -> list[str]:
    return [f"{t['labels'].get('job')} {t['labels'].get('instance')}: {t.get('lastError')}"
            for t in _targets(mon) if t["health"] != "up"]


@pytest.fixture
def mon(lab: LabSession) -> Monitoring:
    return monitoring(lab)


def _no_alert_firing(mon: Monitoring) -> list[dict[str, str]]:
    """Wait (briefly) for a quiet Prometheus: a previous drill's alert resolves in seconds."""
    try:
        wait_for("no alert firing", lambda: not mon.all_firing(), timeout=60)
    except AssertionError:
        pass
    return mon.all_firing()


# ---- a healthy lab ----------------------------------------------------------------------------

def test_healthy_lab_every_inventory_host_scraped_up_and_no_alert(mon):
    up = {r["metric"]["host"]: r["value"][1] for r in mon.query('up{job="node"}')}
    assert up == {h["name"]: "1" for h in mon.lab.inventory["hosts"]}
    ssh = {r["metric"]["host"]: r["value"][1] for r in mon.query('probe_success{job="ssh"}')}
    assert ssh == {h["name"]: "1" for h in mon.lab.inventory["hosts"]}
    assert _down(mon) == []
    assert _no_alert_firing(mon) == []


def _fresh_site_probes(mon: Monitoring, site: str, since: float) -> dict[str, str] | None:
    """The site's three probe results, once each was probed after `since` (the newest sample
    may predate this test: the test before it may have broken and mended the site)."""
    at = {r["metric"]["check"]: float(r["value"][1])
          for r in mon.query(f'timestamp(probe_success{{job="site", site="{site}"}})')}
    if len(at) < 3 or min(at.values()) <= since:
        return None
    return {r["metric"]["check"]: r["value"][1]
            for r in mon.query(f'probe_success{{job="site", site="{site}"}}')}


def test_healthy_lab_each_site_probed_through_its_proxy_ip_with_valid_tls(mon):
    since = time.time()
    for s in mon.lab.inventory["sites"]:
        got, _ = wait_for(f"fresh probes of {s['name']}",
                          lambda name=s["name"]: _fresh_site_probes(mon, name, since), timeout=60)
        assert got == {"https": "1", "https-any": "1", "redirect": "1"}, s["name"]
        (expiry,) = mon.query(f'probe_ssl_earliest_cert_expiry{{site="{s["name"]}", '
                              f'check="https"}}')
        days = (float(expiry["value"][1]) - time.time()) / 86400
        assert 21 < days <= 90  # the lab CA's 90-day certificate, like ACME's


def test_healthy_lab_figures_prometheus_cost_on_ops(mon):
    """Prometheus's memory and CPU on ops, and the slowest scrape (printed for the report)."""
    rss = float(mon.query('process_resident_memory_bytes{job="prometheus"}')[0]["value"][1])
    cpu = float(mon.query('rate(process_cpu_seconds_total{job="prometheus"}[1m])')[0]
                ["value"][1]) if mon.query('rate(process_cpu_seconds_total{job="prometheus"}'
                                           '[1m])') else 0.0
    slowest = max(float(r["value"][1]) for r in mon.query("scrape_duration_seconds"))
    series = float(mon.query("prometheus_tsdb_head_series")[0]["value"][1])
    print(f"\nmonitoring figures: deploy of storage+ops {mon.deploy_seconds:.1f} s, all targets "
          f"up {mon.figures['first_all_up_seconds']:.1f} s after; prometheus RSS "
          f"{rss / 2**20:.0f} MiB, CPU {cpu * 100:.1f} %, {series:.0f} series, slowest scrape "
          f"{slowest:.3f} s")
    assert rss < 1024 * 2**20
    assert slowest < 5


def test_monitoring_listens_on_loopback_or_private_address_only(mon):
    listen = mon.lab.sudo(OPS, "ss -Hltn").stdout
    ops = mon.lab.host(OPS)
    for port in ("9090", "9093", "9115", "9099"):
        addrs = {line.split()[3].rsplit(":", 1)[0] for line in listen.splitlines()
                 if line.split()[3].endswith(f":{port}")}
        assert addrs == {"127.0.0.1"}, (port, addrs)
    assert ":9094" not in listen  # no Alertmanager gossip port
    node = {line.split()[3] for line in listen.splitlines() if ":9100" in line.split()[3]}
    assert node == {f"{ops['private_ip']}:9100"}


def test_monitoring_ports_closed_from_internet_and_vrack_neighbours(mon):
    """From the internet side (the admin network, which does reach ops' SSH) ops shows only 22;
    from another machine in the vRack no exporter answers (only ops may scrape them)."""
    ops = mon.lab.host(OPS)
    web = mon.lab.host(mon.lab.inventory["sites"][0]["host"])
    ports = (22, 9090, 9093, 9094, 9099, 9100, 9115)
    with Probe(mon.lab.lab, "pub", 42, index=95) as internet:
        seen = internet.tcp_open([(ops["public_ip"], p) for p in ports])
    assert seen == {f"{ops['public_ip']}:{p}": False for p in ports}  # not an admin address
    with Probe(mon.lab.lab, "prv", 43, index=96) as neighbour:
        seen = neighbour.tcp_open([(web["private_ip"], 9100), (ops["private_ip"], 9100),
                                   (ops["private_ip"], 9090)])
    assert not any(seen.values()), seen
    from_machine = {p: _machine_tcp_open(ops["public_ip"], p) for p in ports}
    assert from_machine == {p: p == 22 for p in ports}


def _machine_tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


# ---- drills -----------------------------------------------------------------------------------

def _subject(message: str) -> str:
    return next((line for line in message.splitlines() if line.startswith("Subject: ")), "")


def _drill(mon: Monitoring, name: str, alertname: str, match: dict[str, str],
           fault: str, repair: str, host: str,
           during: Callable[[], None] | None = None) -> dict[str, float]:
    """Break, wait for the alert in Prometheus, Alertmanager and the incident log; repair,
    wait for it to resolve everywhere. Returns the latencies (seconds from the fault)."""
    def mine(labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in match.items())

    def logged(status: str) -> Callable[[], bool]:
        return lambda: any(r.get("kind") == "alert" and r.get("what") == alertname
                           and r.get("status") == status
                           and all(r.get(k) == v for k, v in match.items() if k in r)
                           for r in mon.incidents()[before:])

    def mailed(status: str) -> Callable[[], bool]:
        # Alertmanager's email receiver, for real, to the lab's mail sink: the subject says
        # [FIRING:n] or [RESOLVED] and the group's labels (alertname, site, host, tier).
        grouped = [v for k, v in match.items() if k in ("site", "host", "tier")]
        return lambda: any(f"[{status}" in subject and alertname in subject
                           and all(v in subject for v in grouped)
                           for subject in map(_subject, mon.mails()[mails_before:]))

    before, mails_before = len(mon.incidents()), len(mon.mails())
    t0 = time.monotonic()
    mon.lab.sudo(host, fault)
    try:
        wait_for(f"{alertname} firing in Prometheus",
                 lambda: [a for a in mon.firing(alertname) if mine(a)])
        prom = time.monotonic() - t0
        wait_for(f"{alertname} in Alertmanager",
                 lambda: [a for a in mon.alertmanager(alertname) if mine(a)])
        am = time.monotonic() - t0
        wait_for(f"{alertname} firing in the incident log", logged("firing"))
        hook = time.monotonic() - t0
        wait_for(f"{alertname} firing by email", mailed("FIRING"))
        mail = time.monotonic() - t0
        if during is not None:
            during()
    finally:
        mon.lab.sudo(host, repair)
    t1 = time.monotonic()
    wait_for(f"{alertname} resolved in Prometheus",
             lambda: not [a for a in mon.firing(alertname) if mine(a)])
    wait_for(f"{alertname} resolved in the incident log", logged("resolved"))
    wait_for(f"{alertname} resolved by email", mailed("RESOLVED"))
    figures = {"prometheus": prom, "alertmanager": am, "webhook": hook, "email": mail,
               "resolved_webhook": time.monotonic() - t1}
    print(f"\ndrill {name}: fault -> firing in Prometheus {prom:.1f} s, Alertmanager "
          f"{am:.1f} s, incident log {hook:.1f} s, email {mail:.1f} s; repair -> resolved "
          "(log and email) "
          f"{figures['resolved_webhook']:.1f} s")
    return figures


def test_drill_php_fpm_stopped_site_down_for_that_site_only(mon):
    assert _no_alert_firing(mon) == []
    first, *others = mon.lab.inventory["sites"]

    def others_fine() -> None:
        # the fault has been visible for a whole notification round: the other sites' probes
        # still succeed and no SiteDown names them
        assert not [a for a in mon.firing("SiteDown") if a.get("site") != first["name"]]
        for s in others:
            got = mon.query(f'probe_success{{job="site", site="{s["name"]}"}}')
            assert {r["value"][1] for r in got} == {"1"}, s["name"]

    figures = _drill(mon, "php-fpm stopped", "SiteDown", {"site": first["name"]},
                     "systemctl stop php8.4-fpm.service", "systemctl start php8.4-fpm.service",
                     first["host"], during=others_fine)
    assert figures["webhook"] < FIRING_TIMEOUT


def test_drill_small_file_system_filled_disk_almost_full(mon):
    assert _no_alert_firing(mon) == []
    host = "backup-a"
    mnt = "/srv/drill-disk"  # node exporter ignores /mnt, /run, /dev by default
    # A 1 MiB tmpfs stands for a disk (no loop mounts in a container); the lab's rules count
    # tmpfs, real hosts' rules do not (roles/monitoring/render.py).
    fill = (f"mkdir -p {mnt} && mount -t tmpfs -o size=1m tmpfs {mnt} && "
            f"head -c 983040 /dev/zero > {mnt}/fill")
    _drill(mon, "file system 94 % full", "DiskAlmostFull", {"host": host, "mountpoint": mnt},
           fill, f"umount {mnt}; rmdir {mnt}", host)


def test_drill_node_exporter_stopped_host_down(mon):
    assert _no_alert_firing(mon) == []
    host = "backup-b"
    _drill(mon, "node exporter stopped", "HostDown", {"host": host},
           "systemctl stop prometheus-node-exporter.service",
           "systemctl start prometheus-node-exporter.service", host)


def test_drill_backup_metric_aged_backup_stale(mon):
    """The backup runner's own metric (hosting_backup_last_snapshot_timestamp_seconds, written
    by backup/metrics.py) with a newest local snapshot 27 h old, for a site label of its own so
    it never collides with the runner's file; removed -> resolved."""
    assert _no_alert_firing(mon) == []
    host = mon.lab.inventory["sites"][0]["host"]
    prom = "/var/lib/prometheus/node-exporter/drill_backup.prom"
    line = ('hosting_backup_last_snapshot_timestamp_seconds{site=\\"drill\\",tier=\\"local\\"} '
            '$(( $(date +%s) - 27 * 3600 ))')
    fault = f'echo "{line}" > {prom}.tmp && mv {prom}.tmp {prom}'
    _drill(mon, "newest local backup 27 h old", "BackupStale", {"site": "drill", "tier": "local"},
           fault, f"rm -f {prom}", host)
