"""Central logging in the lab (issue 17, lynis LOGG-2154; docs/logging.md): every host ships
its journal to ops over mutual TLS (roles/logging). A `logger` line on a web host reaches ops
in that host's own file within seconds; a line whose syslog host name claims another host,
sent with the sender's own certificate, still lands in the sender's file; a client without a
certificate of the internal CA is refused; lines sent while ops' rsyslog is stopped arrive
once it is back (the queue); a second deploy changes nothing. Leaves rsyslog running on ops."""
from __future__ import annotations

import time
import uuid

import pytest

from engine import tls_ca
from engine.inventory import Inventory
from lab.testing import LabSession
from roles.logging import role as r

from .test_web_support import deploy
from .test_web_verify import verify

pytestmark = pytest.mark.lab
SENDER, OTHER = "web-villeparisis", "web-participation"
ARRIVAL_BUDGET = 15.0  # seconds for a line to be on ops' disk
_DEPLOYED: dict[int, float] = {}

# Markers never go on a command line: sudo logs its commands, and those lines are shipped
# too. They go through stdin, and ops' files are read without sudo (root_exec).
# Speaks syslog over TLS to ops from a host, as a compromised host could (python3 is on every
# host): octet-counted RFC 5424 frames; prints what happened, never a key.
CLIENT = r'''
import socket, ssl, sys
host, port, ca, cert, key, claimed = sys.argv[1:7]
text = sys.stdin.read().strip()
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = True
if cert:
    ctx.load_cert_chain(cert, key)
try:
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="ops") as s:
            msg = f"<13>1 - {claimed} hosting-test - - - {text}".encode()
            s.sendall(str(len(msg)).encode() + b" " + msg)
            s.settimeout(3)
            try:
                got = s.recv(100)
                print("closed" if got == b"" else "answered")
            except TimeoutError:
                print("open")
except (ssl.SSLError, OSError) as exc:
    print("refused", type(exc).__name__)
'''


@pytest.fixture
def logged(lab: LabSession) -> LabSession:
    """All six hosts deployed once per lab session (every host ships its logs)."""
    if id(lab) not in _DEPLOYED or lab.is_down:
        t0 = time.monotonic()
        report = deploy(lab, lab.hosts)
        if not report.ok:  # the lab's apt proxy sometimes answers 503 from its upstream
            report = deploy(lab, lab.hosts)
        failures = [f"{x.host}: {x.error or [o.error for o in x.outcomes if not o.ok]}"
                    for x in report.results if not x.ok]
        assert report.ok, "deploy failed: " + "; ".join(failures)
        _DEPLOYED[id(lab)] = time.monotonic() - t0
        print(f"deploy of {len(lab.hosts)} hosts: {_DEPLOYED[id(lab)]:.1f}s")
    return lab


def _marker() -> str:
    return f"hosting-logging-{uuid.uuid4().hex[:12]}"


def _where(lab: LabSession, marker: str) -> list[str]:
    """The central log files on ops that hold `marker`."""
    proc = lab.root_exec("ops", ["sh", "-c", f"grep -rlF -f - {r.REMOTE_DIR} || true"],
                         input=marker + "\n")
    return sorted(proc.stdout.split())


def _line(lab: LabSession, marker: str, host: str) -> str:
    return lab.root_exec("ops", ["grep", "-F", "-f", "-", _file(host)],
                         input=marker + "\n").stdout


def _wait(lab: LabSession, marker: str, budget: float = ARRIVAL_BUDGET) -> tuple[list[str], float]:
    t0 = time.monotonic()
    while True:
        found = _where(lab, marker)
        if found or time.monotonic() - t0 > budget:
            return found, time.monotonic() - t0
        time.sleep(0.5)


def _file(host: str) -> str:
    return f"{r.REMOTE_DIR}/{host}/{r.LOG_FILE}"


def _speak(lab: LabSession, claimed: str, text: str, cert: str = r.TLS.client_cert,
           key: str = r.TLS.client_key) -> str:
    ops_ip = lab.host("ops")["private_ip"]
    argv = ["python3", "-c", CLIENT, ops_ip, "6514", r.TLS.ca, cert, key, claimed]
    return lab.root_exec(SENDER, argv, input=text + "\n").stdout.strip()


def test_every_host_runs_rsyslog_with_a_remote_target_lynis_recognises(logged):
    for host in logged.hosts:
        out = logged.sudo(host, "systemctl is-active rsyslog.service; grep -hoE "
                                "'target=\"[a-zA-Z0-9.:-]+\"' /etc/rsyslog.d/*.conf").stdout
        assert out.split() == ["active", f'target="{logged.host("ops")["private_ip"]}"'], host


def test_logger_line_on_a_web_host_reaches_its_own_file_on_ops_within_seconds(logged):
    marker = _marker()
    logged.run(SENDER, f"logger -t hosting-test {marker}")
    found, seconds = _wait(logged, marker)
    print(f"logger line from {SENDER} on ops after {seconds:.1f}s")
    assert found == [_file(SENDER)]
    line = _line(logged, marker, SENDER)
    assert logged.host(SENDER)["private_ip"] in line and "hosting-test" in line
    mode = logged.sudo("ops", f"stat -c '%a %U %G' {r.REMOTE_DIR} {r.REMOTE_DIR}/{SENDER} "
                              f"{_file(SENDER)}").stdout.split("\n")
    assert mode[:3] == ["750 root adm", "750 root adm", "640 root adm"]


def test_line_claiming_another_host_lands_in_the_senders_file(logged):
    """A compromised host writing syslog frames itself, with its own certificate, naming
    another host: filed by its address, in its own file."""
    marker = _marker()
    assert _speak(logged, OTHER, marker) in ("open", "closed")
    found, _s = _wait(logged, marker)
    assert found == [_file(SENDER)]
    line = _line(logged, marker, SENDER)
    assert f" {OTHER} " in line  # the claimed name is shown, not trusted


@pytest.mark.parametrize("who", ["no certificate", "another CA"])
def test_client_without_a_certificate_of_the_internal_ca_is_refused(logged, tmp_path, who):
    marker = _marker()
    cert = key = ""
    if who == "another CA":
        other = tmp_path / "other-ca"
        tls_ca.create(other, "other")
        leaf = tls_ca.ensure(other, Inventory.from_doc(logged.inventory)).log_client(SENDER)
        cert, key = "/root/other-log.pem", "/root/other-log.key"
        for path, data in ((cert, leaf.cert_pem), (key, leaf.key_pem)):
            logged.root_exec(SENDER, ["sh", "-c", f"umask 077; cat > {path}"],
                             input=data.decode())
    try:
        said = _speak(logged, SENDER, marker, cert, key)
    finally:
        logged.root_exec(SENDER, ["rm", "-f", "/root/other-log.pem", "/root/other-log.key"])
    # TLS 1.3: the client may finish its side before ops' alert arrives, then sees it close.
    assert said.startswith(("refused", "closed")), said
    found, _s = _wait(logged, marker, budget=5)
    assert found == []


def test_lines_sent_while_ops_rsyslog_is_stopped_arrive_after_it_starts(logged):
    markers = [_marker() for _ in range(20)]
    # syslog.socket too: a datagram on it would start rsyslog again (socket activation).
    logged.sudo("ops", "systemctl stop syslog.socket rsyslog.service")
    try:
        for m in markers:
            logged.run(SENDER, f"logger -t hosting-test {m}")
        time.sleep(2)
        state = logged.sudo("ops", "systemctl is-active rsyslog.service", check=False)
        assert state.stdout.strip() == "inactive"
        assert [m for m in markers if _where(logged, m)] == []
    finally:
        logged.sudo("ops", "systemctl start rsyslog.service")
    t0 = time.monotonic()
    missing = markers
    while missing and time.monotonic() - t0 < 90:
        text = logged.sudo("ops", f"cat {_file(SENDER)}").stdout
        missing = [m for m in markers if m not in text]
        time.sleep(1)
    print(f"{len(markers) - len(missing)}/{len(markers)} queued lines on ops "
          f"{time.monotonic() - t0:.1f}s after its rsyslog started")
    assert missing == []


def test_lynis_no_longer_suggests_remote_logging(logged):
    """lynis LOGG-2154 ("Enable logging to an external logging host") on a web host: the
    test runs (its prerequisites hold) and finds the remote target, so no suggestion."""
    t0 = time.monotonic()
    out = logged.sudo(SENDER, "lynis audit system --cronjob --quiet >/dev/null 2>&1; "
                              "grep -hE 'LOGG-2154|remote' /var/log/lynis.log; "
                              "grep -h '^suggestion' /var/log/lynis-report.dat || true",
                      timeout=900).stdout
    print(f"lynis on {SENDER} in {time.monotonic() - t0:.0f}s:\n" + "\n".join(
        line for line in out.splitlines() if "LOGG-2154" in line or "remote" in line.lower()))
    assert "Performing test ID LOGG-2154" in out
    assert "suggestion[]=LOGG-2154" not in out


def test_verify_suite_logging_and_firewall_checks_pass_on_the_lab(logged):
    """tests/verify/test_logging.py and the firewall matrix (6514 on ops from the other hosts
    only), graded independently of the role."""
    proc = verify(logged, "tests/verify/test_logging.py", "tests/verify/test_firewall.py")
    print(f"tests/verify logging + firewall: {proc.stdout.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_second_deploy_changes_nothing(logged):
    t0 = time.monotonic()
    report = deploy(logged, logged.hosts)
    seconds = time.monotonic() - t0
    print(f"second deploy of {len(logged.hosts)} hosts: {seconds:.2f}s")
    changed = {x.host: [o.summary for o in x.outcomes if o.changed] for x in report.results
               if x.changed}
    assert report.ok and changed == {}
    assert logged.sudo("ops", "systemctl is-active rsyslog.service").stdout.strip() == "active"
