"""`fab deploy` against the lab's real Debian 13 hosts: converge from fresh, a second run
changes nothing, --check shows exactly a manual drift, a config failing validation leaves the
old file, one bad host fails alone, certificates are revoked everywhere, hosts re-signed.

One deploy for the whole module (the lab is shared by the session). At the end the lab is
rebuilt in its first-boot state, which the lab's own tests (run after these) expect.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.access import Access, credentials
from engine.inventory import Inventory
from engine.resources import File
from engine.role import Desired, Settings
from engine.run import converge_hosts
from lab.testing import LabSession, Probe, lab_env
from tasks.deploy import run_deploy

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
NOOP_BUDGET = 15.0  # seconds for a no-op deploy of the whole lab (issue 4)




def fab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fabric", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout, check=False)


def table(output: str) -> dict[str, tuple[int, int, int]]:
    """host -> (changed, unchanged, failed) from the summary table."""
    rows = {}
    for line in output.splitlines():
        m = re.match(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+$", line)
        if m and m.group(1) != "TOTAL":
            rows[m.group(1)] = (int(m.group(2)), int(m.group(3)), int(m.group(4)))
    return rows


@dataclass
class Deployed:
    lab: LabSession
    first: subprocess.CompletedProcess[str]
    seconds: float

    def sha(self, host: str, path: str) -> str:
        return self.lab.sudo(host, f"sha256sum {path}").stdout.split()[0]


@pytest.fixture(scope="module")
def deployed(lab_session_: LabSession) -> Iterator[Deployed]:
    lab_session_.ensure_up()
    with lab_env(lab_session_):
        start = time.monotonic()
        first = fab("deploy", "--env", "lab")
        yield Deployed(lab_session_, first, time.monotonic() - start)
    # Later modules (the lab's own tests) expect hosts as first boot left them.
    lab_session_.down()
    lab_session_.ensure_up()


def test_deploy_fresh_lab_converges_every_host(deployed: Deployed) -> None:
    out = deployed.first.stdout
    assert deployed.first.returncode == 0, out + deployed.first.stderr
    rows = table(out)
    assert set(rows) == set(deployed.lab.hosts)
    assert all(changed > 0 and failed == 0 for changed, _u, failed in rows.values()), out
    print(f"first deploy of {len(rows)} hosts: {deployed.seconds:.1f}s")


def test_deploy_second_run_changes_nothing_within_the_budget(deployed: Deployed) -> None:
    lines: list[str] = []
    with lab_env(deployed.lab):
        start = time.monotonic()
        report = run_deploy("lab", emit=lines.append)
        seconds = time.monotonic() - start
    assert report.ok, "\n".join(lines)
    assert [r.changed for r in report.results] == [0] * len(report.results), "\n".join(lines)
    assert seconds <= NOOP_BUDGET
    # One agent session per host: the system facts, then the facts of the role's resources.
    assert all(r.round_trips == 2 for r in report.results)


# The baseline part of tests/verify, right after this module's deploy. The nginx, PHP-FPM and
# MariaDB modules are for a web tier with its sites released: tests/lab/test_web_verify.py runs
# the whole suite then.
BASELINE_VERIFY = ("test_sshd.py", "test_firewall.py", "test_ssh_audit.py")


def test_deploy_verification_suite_and_ssh_audit_pass_on_every_host(deployed: Deployed) -> None:
    # tests/verify is the suite an admin runs against prod (testinfra over ssh://, dev-sec
    # ssh-baseline controls, nftables, ssh-audit with the committed policy); here on the lab.
    lab = deployed.lab
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *(str(REPO / "tests" / "verify" / m) for m in BASELINE_VERIFY),
         "--inventory", str(lab.inventory_path), "--ssh-config", str(lab.ssh_config)],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    print(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("host", ["ops", "proxy", "web-villeparisis", "backup-b"])
def test_deploy_effective_sshd_and_firewall_are_the_hardened_ones(deployed: Deployed,
                                                                  host: str) -> None:
    effective = dict(line.split(" ", 1) for line in
                     deployed.lab.sudo(host, "sshd -T").stdout.splitlines() if " " in line)
    assert effective["kexalgorithms"].startswith("mlkem768x25519-sha256,")
    assert (effective["passwordauthentication"], effective["kbdinteractiveauthentication"],
            effective["authorizedkeysfile"], effective["permitrootlogin"]) == \
        ("no", "no", "none", "no")
    assert effective["loglevel"] == "VERBOSE"
    # No account forwards; on the bastion, the admins' login does (ProxyJump, a Match block).
    assert effective["allowtcpforwarding"] == "no"
    login = deployed.lab.inventory["ssh"]["login_user"]
    matched = dict(line.split(" ", 1) for line in deployed.lab.sudo(
        host, f"sshd -T -C user={login},host=admin,addr=192.0.2.1").stdout.splitlines()
        if " " in line)
    assert matched["allowtcpforwarding"] == ("local" if host == "ops" else "no")
    ruleset = deployed.lab.sudo(host, "nft list ruleset").stdout
    assert "policy drop" in ruleset
    gone = deployed.lab.sudo(host, "test -e /etc/ssh/sshd_config.d/00-bootstrap.conf",
                             check=False)
    assert gone.returncode != 0


def test_deploy_check_shows_exactly_a_manual_drift_and_changes_nothing(
        deployed: Deployed) -> None:
    lab, host = deployed.lab, "backup-b"
    lab.sudo(host, "sed -i 's/^MaxAuthTries 2$/MaxAuthTries 6/' /etc/ssh/sshd_config && "
                   "nft add rule inet filter input tcp dport 8080 accept")
    before = deployed.sha(host, "/etc/ssh/sshd_config")
    with lab_env(lab):
        check = fab("deploy", "--env", "lab", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    rows = table(check.stdout)
    assert rows[host] == (2, rows[host][1], 0)
    assert all(changed == 0 for name, (changed, _u, _f) in rows.items() if name != host)
    assert "-MaxAuthTries 6\n+MaxAuthTries 2\n" in check.stdout
    assert "-\t\ttcp dport 8080 accept" in check.stdout
    assert deployed.sha(host, "/etc/ssh/sshd_config") == before  # --check changed nothing
    with lab_env(lab):
        fix = fab("deploy", "--env", "lab", "--hosts", host)
    assert fix.returncode == 0 and table(fix.stdout)[host][0] == 2, fix.stdout
    assert "maxauthtries 2" in lab.sudo(host, "sshd -T").stdout
    assert "8080" not in lab.sudo(host, "nft list ruleset").stdout


def test_deploy_config_failing_validation_leaves_the_old_file_and_fails_the_host(
        deployed: Deployed) -> None:
    lab, host = deployed.lab, "web-participation"
    before = deployed.sha(host, "/etc/ssh/sshd_config")
    broken = File("/etc/ssh/sshd_config", "PasswordAuthentication yes\nNoSuchKeyword 1\n",
                  0o600, validate="/usr/sbin/sshd -t -f {}")
    lines: list[str] = []
    with lab_env(lab):
        inv = Inventory.from_doc(lab.inventory)
        report = converge_hosts(inv, Access(inv, credentials("lab", inv=inv)), [inv.host(host)],
                                lambda _ctx: Desired((broken,)), Settings(),
                                emit=lines.append)
    [result] = report.results
    assert not result.ok and result.failed == 1
    assert "validation failed" in result.outcomes[0].error
    assert deployed.sha(host, "/etc/ssh/sshd_config") == before
    assert lab.sudo(host, "ls /etc/ssh").stdout.count("~") == 0  # no temp file left
    lab.run(host, "true")  # and sshd still lets us in


def test_deploy_one_unreachable_host_fails_alone_with_a_nonzero_exit(
        deployed: Deployed, tmp_path: Path) -> None:
    doc = json.loads(json.dumps(deployed.lab.inventory))
    for h in doc["hosts"]:
        if h["name"] == "backup-b":
            h["private_ip"] = re.sub(r"\.\d+$", ".250", h["private_ip"])  # nobody there
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps(doc))
    # Not the bastion: its PermitOpen would follow the moved address and lock backup-b out;
    # not a web host: its backup client config names backup-b's address, so it would change.
    with lab_env(deployed.lab):
        proc = fab("deploy", "--env", "lab", "--inventory", str(inv), "--hosts",
                   "proxy,backup-a,backup-b")
    assert proc.returncode == 1, proc.stdout
    rows = table(proc.stdout)
    assert rows["backup-b"][2] == 1
    assert rows["proxy"] == (0, rows["proxy"][1], 0)
    assert rows["backup-a"] == (0, rows["backup-a"][1], 0)
    assert re.search(r"^FAIL backup-b ", proc.stdout, re.M)


def test_deploy_firewall_from_the_internet_and_from_the_vrack(deployed: Deployed) -> None:
    lab = deployed.lab
    ops, proxy, web = lab.host("ops"), lab.host("proxy"), lab.host("web-villeparisis")
    with Probe(lab.lab, "pub", 40, index=91) as internet:
        seen = internet.tcp_open([(ops["public_ip"], 22), (proxy["public_ip"], 22)])
    assert seen == {f"{ops['public_ip']}:22": False, f"{proxy['public_ip']}:22": False}, \
        "the machine (admin network) reaches ops; any other internet address must not"
    with Probe(lab.lab, "prv", 41, index=92) as neighbour:
        seen = neighbour.tcp_open([(web["private_ip"], 22), (ops["private_ip"], 22)])
    assert seen == {f"{web['private_ip']}:22": False, f"{ops['private_ip']}:22": False}
    # ...while the bastion reaches every host's SSH port (that is how we got here).
    out = lab.run("ops", f"timeout 3 bash -c '</dev/tcp/{web['private_ip']}/22' && echo open")
    assert out.stdout.strip() == "open"


def ssh_as(lab: LabSession, key: Path, host_ip: str) -> subprocess.CompletedProcess[str]:
    """OpenSSH with only this key and its certificate (no lab identity to fall back on)."""
    argv = ["ssh", "-F", "/dev/null", "-o", f"UserKnownHostsFile={lab.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "IdentityAgent=none", "-o", "ConnectTimeout=10", "-i", str(key),
            "-o", f"CertificateFile={key}-cert.pub",
            f"{lab.inventory['ssh']['login_user']}@{host_ip}", "true"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_ca_sign_user_then_revoke_pushes_the_krl_and_the_login_is_refused(
        deployed: Deployed, tmp_path: Path) -> None:
    lab = deployed.lab
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with lab_env(lab):
        signed = fab("ca.sign-user", "--env", "lab", "--key", f"{key}.pub", "--principal",
                     "sysadmin", "--ttl", "1h")
        assert signed.returncode == 0, signed.stderr
        ops_ip = lab.host("ops")["public_ip"]
        assert ssh_as(lab, key, ops_ip).returncode == 0
        serial = re.search(r"Serial: (\d+)", subprocess.run(
            ["ssh-keygen", "-L", "-f", f"{key}-cert.pub"], capture_output=True, text=True,
            check=True).stdout).group(1)
        revoked = fab("ca.revoke", "--env", "lab", "--serial", serial)
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    assert ssh_as(lab, key, ops_ip).returncode == 255
    local = hashlib.sha256((lab.lab.trust.dir / "user_ca.krl").read_bytes()).hexdigest()
    assert {deployed.sha(h, "/etc/ssh/revoked_keys.krl") for h in lab.hosts} == {local}
    # The host CA's KRL too, on every host (the web hosts' backup pushes check it).
    hosts_krl = hashlib.sha256((lab.lab.trust.dir / "host_ca.krl").read_bytes()).hexdigest()
    assert {deployed.sha(h, "/etc/ssh/revoked_host_keys.krl") for h in lab.hosts} == {hosts_krl}


def test_ca_sign_hosts_pins_the_inventory_fingerprint_and_connections_still_verify(
        deployed: Deployed) -> None:
    lab = deployed.lab
    cert = "/etc/ssh/ssh_host_ed25519_key-cert.pub"
    before = deployed.sha("backup-a", cert)
    with lab_env(lab):
        proc = fab("ca.sign-hosts", "--env", "lab", "--hosts", "backup-a")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert deployed.sha("backup-a", cert) != before  # a new certificate, new serial
        report = run_deploy("lab", hosts="backup-a", check=True, emit=lambda _s: None)
    assert report.ok and report.results[0].changed == 0
