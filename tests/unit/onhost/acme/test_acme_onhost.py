"""onhost/acme: the proxy's installer (check, save, nginx -t, reload, put back on failure) and
the ops host's certbot hooks (push over SSH, incident record on failure). Issue 14, R-INC-4."""
from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path

import pytest

from lab import tls
from onhost.acme import deploy_hook, install, ovh_dns

ROOT = Path(__file__).resolve().parents[4]
RECEIVER = ROOT / "onhost" / "incidents" / "receiver.py"
NAMES = ("*.villeparisis.fr", "villeparisis.fr")


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str]:
    d = tls.issue(tmp_path / "ca", "prod", NAMES)
    return (d / "fullchain.pem").read_text(), (d / "privkey.pem").read_text()


@pytest.fixture
def live(tmp_path: Path, pair) -> tuple[Path, Path]:
    other = tls.issue(tmp_path / "ca-old", "prod", NAMES)
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    cert.write_text((other / "fullchain.pem").read_text())
    key.write_text((other / "privkey.pem").read_text())
    return cert, key


def fake_run(monkeypatch, fail: str = "") -> list[list[str]]:
    """openssl runs for real; nginx and systemctl are recorded (and fail when named)."""
    calls: list[list[str]] = []
    real = install.run

    def run(argv, stdin=b"", timeout=60):
        if argv[0] == "openssl":
            return real(argv, stdin, timeout)
        calls.append(argv)
        return (1, f"{argv[0]}: drill failure") if argv[0] == fail else (0, "")
    monkeypatch.setattr(install, "run", run)
    return calls


def test_install_good_pair_writes_key_0600_and_reloads(monkeypatch, pair, live):
    calls = fake_run(monkeypatch)
    cert, key = live
    result = install.install(pair[0], pair[1], str(cert), str(key))
    assert result["ok"] and result["serial"]
    assert cert.read_text() == pair[0] and key.read_text() == pair[1]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert calls == [["nginx", "-t", "-q"], ["systemctl", "reload", "nginx.service"]]


def test_install_key_mismatch_refused_nothing_written(monkeypatch, pair, live, tmp_path):
    calls = fake_run(monkeypatch)
    cert, key = live
    before = cert.read_text(), key.read_text()
    other = tls.issue(tmp_path / "ca3", "prod", NAMES)
    result = install.install(pair[0], (other / "privkey.pem").read_text(), str(cert), str(key))
    assert not result["ok"] and "does not match" in result["errors"][0]
    assert (cert.read_text(), key.read_text()) == before and calls == []


def test_install_nginx_test_fails_restores_previous_pair(monkeypatch, pair, live):
    fake_run(monkeypatch, fail="nginx")
    cert, key = live
    before = cert.read_text(), key.read_text()
    result = install.install(pair[0], pair[1], str(cert), str(key))
    assert not result["ok"] and result["kept"] == "previous"
    assert any("nginx -t failed" in e for e in result["errors"])
    assert (cert.read_text(), key.read_text()) == before


def stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": io.BytesIO(data)})())


def config(tmp_path: Path, live, probes=()) -> Path:
    path = tmp_path / "lineages.json"
    path.write_text(json.dumps({"lineages": {"villeparisis.fr": {
        "names": list(NAMES), "cert": str(live[0]), "key": str(live[1]),
        "probes": [list(p) for p in probes]}}}))
    return path


def test_install_main_bad_input_exits_1_naming_input(monkeypatch, capsys, live, tmp_path):
    fake_run(monkeypatch)
    stdin(monkeypatch, b"{")
    assert install.main(["--config", str(config(tmp_path, live))]) == 1
    assert json.loads(capsys.readouterr().out)["errors"][0].startswith("input:")


def test_install_main_lineage_not_configured_refused_nothing_written(monkeypatch, capsys, live,
                                                                     tmp_path, pair):
    calls = fake_run(monkeypatch)
    before = live[0].read_text()
    stdin(monkeypatch, json.dumps({"lineage": "../../etc", "fullchain": pair[0],
                                   "privkey": pair[1]}).encode())
    assert install.main(["--config", str(config(tmp_path, live))]) == 1
    assert "is not a lineage name" in json.loads(capsys.readouterr().out)["errors"][0]
    stdin(monkeypatch, json.dumps({"lineage": "other.fr", "fullchain": pair[0],
                                   "privkey": pair[1]}).encode())
    assert install.main(["--config", str(config(tmp_path, live))]) == 1
    assert "not one this proxy serves (villeparisis.fr)" in \
        json.loads(capsys.readouterr().out)["errors"][0]
    assert live[0].read_text() == before and calls == []


def test_install_main_configured_lineage_installed_at_its_paths(monkeypatch, capsys, live,
                                                                tmp_path, pair):
    fake_run(monkeypatch)
    stdin(monkeypatch, json.dumps({"lineage": "villeparisis.fr", "fullchain": pair[0],
                                   "privkey": pair[1]}).encode())
    assert install.main(["--config", str(config(tmp_path, live))]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["lineage"] == "villeparisis.fr"
    assert live[0].read_text() == pair[0] and live[1].read_text() == pair[1]


def test_install_certificate_missing_a_set_name_refused(monkeypatch, live, tmp_path):
    calls = fake_run(monkeypatch)
    d = tls.issue(tmp_path / "ca4", "prod", ("villeparisis.fr",))
    result = install.install((d / "fullchain.pem").read_text(), (d / "privkey.pem").read_text(),
                             str(live[0]), str(live[1]), names=NAMES)
    assert not result["ok"] and "does not carry *.villeparisis.fr" in result["errors"][0]
    assert calls == []


def test_install_new_serial_served_after_reload_ok_with_wait(monkeypatch, pair, live):
    fake_run(monkeypatch)
    answers = iter(["old", "old"])
    serial = install.check_pair(*pair)[0]
    result = install.install(pair[0], pair[1], str(live[0]), str(live[1]), NAMES,
                             probes=[("192.0.2.1", "villeparisis.fr")], within=5,
                             probe=lambda ip, name: next(answers, serial))
    assert result["ok"] and result["served_after"] is not None


def test_install_new_serial_never_served_fails_restores_and_reloads(monkeypatch, pair, live):
    calls = fake_run(monkeypatch)
    before = live[0].read_text(), live[1].read_text()
    result = install.install(pair[0], pair[1], str(live[0]), str(live[1]), NAMES,
                             probes=[("192.0.2.1", "villeparisis.fr")], within=0.3,
                             probe=lambda ip, name: "0abc")
    assert not result["ok"] and result["kept"] == "previous"
    assert "does not serve serial" in result["errors"][0] and "0abc" in result["errors"][0]
    assert (live[0].read_text(), live[1].read_text()) == before
    assert calls[-1] == ["systemctl", "reload", "nginx.service"] and len(calls) == 3


def test_served_serial_real_handshake_matches_check_pair_serial(pair, tmp_path):
    """The probe's serial (a real TLS handshake, openssl on the DER) is written as the
    installer's own (check_pair), so "the new serial is served" compares like with like."""
    import socket
    import ssl
    import threading
    (tmp_path / "c.pem").write_text(pair[0])
    (tmp_path / "k.pem").write_text(pair[1])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        try:
            with ctx.wrap_socket(conn, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass
    worker = threading.Thread(target=serve)
    worker.start()
    try:
        got = install.served_serial("127.0.0.1", "villeparisis.fr", port=port)
    finally:
        worker.join(10)
        server.close()
    assert got and got == install.check_pair(*pair)[0]


def test_served_serial_nothing_listening_returns_empty():
    import socket
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert install.served_serial("127.0.0.1", "villeparisis.fr", timeout=2, port=port) == ""


def test_wait_served_every_probe_must_match_bounded():
    now = [0.0]
    seen: list[tuple[str, str]] = []

    def probe(ip: str, name: str) -> str:
        seen.append((ip, name))
        return "new" if ip == "a" else "old"
    errors, waited = install.wait_served([("a", "x"), ("b", "y")], "new", within=2,
                                         probe=probe, clock=lambda: now[0],
                                         sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert waited == 2 and len(errors) == 1 and "on b for y" in errors[0]
    assert seen.count(("a", "x")) == 1  # served once: not probed again


def fake_ssh(tmp_path: Path, monkeypatch, answer: str, rc: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "ssh-stdin"
    ssh = bin_dir / "ssh"
    ssh.write_text(f"#!/bin/sh\ncat > {seen}\necho '{answer}'\nexit {rc}\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return seen


def lineage(tmp_path: Path, pair) -> Path:
    d = tmp_path / "live" / "villeparisis.fr"
    d.mkdir(parents=True)
    (d / "fullchain.pem").write_text(pair[0])
    (d / "privkey.pem").write_text(pair[1])
    return d


def test_deploy_ok_sends_pair_on_stdin_and_writes_status(tmp_path, monkeypatch, pair):
    seen = fake_ssh(tmp_path, monkeypatch, '{"ok": true, "serial": "ab"}', 0)
    status, log = tmp_path / "status.json", tmp_path / "incidents.jsonl"
    rc = deploy_hook.deploy(str(lineage(tmp_path, pair)), "cfg", str(status), str(RECEIVER),
                            str(log))
    assert rc == 0
    assert json.loads(seen.read_text()) == {"lineage": "villeparisis.fr",
                                            "fullchain": pair[0], "privkey": pair[1]}
    assert json.loads(status.read_text())["serial"] == "ab"
    assert not log.exists()


def test_deploy_proxy_refuses_records_incident_and_exits_1(tmp_path, monkeypatch, pair, capsys):
    fake_ssh(tmp_path, monkeypatch, '{"ok": false, "errors": ["nginx -t failed: x"]}', 1)
    status, log = tmp_path / "status.json", tmp_path / "incidents.jsonl"
    rc = deploy_hook.deploy(str(lineage(tmp_path, pair)), "cfg", str(status), str(RECEIVER),
                            str(log))
    assert rc == 1
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["status"] == "failed" and "keeps serving the previous" in record["what"]
    assert record["errors"] == ["nginx -t failed: x"]
    assert json.loads(status.read_text())["incident"] == "recorded"
    assert "PRIVATE KEY" not in capsys.readouterr().out + log.read_text()


def test_failed_records_renewal_failure_incident(tmp_path):
    log = tmp_path / "incidents.jsonl"
    assert deploy_hook.failed("certbot.service", str(RECEIVER), str(log)) == 0
    record = json.loads(log.read_text())
    assert "ACME renewal failed" in record["what"] and record["status"] == "failed"


@pytest.mark.parametrize(("domain", "sub"), [
    ("villeparisis.fr", "_acme-challenge"),
    ("*.villeparisis.fr", "_acme-challenge"),
    ("participation.villeparisis.fr", "_acme-challenge.participation"),
])
def test_sub_domain_inside_zone_returns_record_name(domain: str, sub: str):
    assert ovh_dns.sub_domain(domain, "villeparisis.fr") == sub


def test_sub_domain_outside_zone_raises():
    with pytest.raises(ovh_dns.OvhError, match="not inside the zone"):
        ovh_dns.sub_domain("example.org", "villeparisis.fr")


def credentials_file(tmp_path: Path, mode: int, drop: str = "") -> Path:
    path = tmp_path / "ovh.ini"
    lines = [f"{f} = {'ovh-eu' if f == 'dns_ovh_endpoint' else 'v1'}"
             for f in ovh_dns.FIELDS if f != drop]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(mode)
    return path


def test_read_credentials_group_readable_refused(tmp_path: Path):
    with pytest.raises(ovh_dns.OvhError, match="must be 0600"):
        ovh_dns.read_credentials(str(credentials_file(tmp_path, 0o640)))


def test_read_credentials_missing_field_names_it(tmp_path: Path):
    with pytest.raises(ovh_dns.OvhError, match="dns_ovh_consumer_key missing"):
        ovh_dns.read_credentials(str(credentials_file(tmp_path, 0o600, "dns_ovh_consumer_key")))


def test_main_auth_unreachable_api_exits_1_without_secret(tmp_path, monkeypatch, capsys):
    creds = credentials_file(tmp_path, 0o600)
    monkeypatch.setitem(ovh_dns.ENDPOINTS, "ovh-eu", "http://127.0.0.1:9/1.0")
    monkeypatch.setenv("CERTBOT_DOMAIN", "villeparisis.fr")
    monkeypatch.setenv("CERTBOT_VALIDATION", "tok")
    rc = ovh_dns.main(["auth", "--credentials", str(creds), "--zone", "villeparisis.fr",
                       "--propagation-seconds", "0"])
    err = capsys.readouterr().err
    assert rc == 1 and "GET http://127.0.0.1:9/1.0/auth/time" in err and "v1" not in err
