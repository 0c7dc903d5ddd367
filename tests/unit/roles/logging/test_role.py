"""The central logging role (roles/logging, issue 17, lynis LOGG-2154): every host forwards
its journal to ops over mutual TLS through a bounded disk-assisted queue; ops files each line
by the sender's address, never by the host name the sender writes; validated by rsyslogd."""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

import pytest

from engine.decide import decide
from engine.facts import HostFacts
from engine.resources import Directory, File, Service
from roles.backup import config as backup_config
from roles.logging import role as r
from roles.registry import desired
from tests.unit.roles.converged import converged, role_ctx

ALL = ("proxy", "ops", "web-villeparisis", "web-participation", "backup-a", "backup-b")
TLS_FILES = {r.TLS.ca, r.TLS.client_cert, r.TLS.client_key, r.TLS.server_cert, r.TLS.server_key}


def _files(d) -> dict[str, File]:
    return {x.path: x for x in d.resources if isinstance(x, File)}


def _with_tls(ctx, internal_ca):
    return dataclasses.replace(ctx, settings=dataclasses.replace(
        ctx.settings, internal_tls=internal_ca[1]))


@pytest.mark.parametrize("host", ALL)
def test_registry_every_host_gets_the_central_logging(prod, host):
    keys = {x.key for x in desired(role_ctx(prod, host)).resources}
    assert {f"file:{r.FORWARD}", f"file:{r.MAIN}", "service:rsyslog.service"} <= keys


@pytest.mark.parametrize("host", ALL)
def test_forward_conf_every_host_sends_to_ops_private_address_over_tls(prod, host):
    conf = r.forward_conf(role_ctx(prod, host))
    ops = prod.host("ops")
    assert f'target="{ops.private_ip}" port="6514" protocol="tcp"' in conf
    assert 'StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"' in conf
    assert 'StreamDriverPermittedPeers="ops"' in conf  # ops authenticated by its name
    assert f'StreamDriver.CertFile="{r.TLS.client_cert}"' in conf


def test_forward_conf_target_line_is_one_lynis_recognises_in_rsyslog_d(prod):
    """lynis LOGG-2154 looks for `target="..."` in /etc/rsyslog.d/*.conf."""
    assert re.fullmatch(r"/etc/rsyslog\.d/[^/]+\.conf", r.FORWARD)
    assert re.search(r'target="[a-zA-Z0-9.:-]+"', r.forward_conf(role_ctx(prod, "proxy")))


def test_forward_conf_queue_is_disk_assisted_bounded_and_retried_for_ever(prod):
    conf = r.forward_conf(role_ctx(prod, "web-villeparisis"))
    for setting in ('queue.type="LinkedList"', 'queue.filename="hosting-to-ops"',
                    'queue.maxDiskSpace="1g"', 'queue.size="100000"',
                    'queue.saveOnShutdown="on"', 'action.resumeRetryCount="-1"'):
        assert setting in conf


def test_main_conf_reads_the_journal_only(prod):
    conf = r.main_conf(role_ctx(prod, "proxy"))
    assert 'module(load="imjournal" StateFile="imjournal.state"' in conf
    assert "imuxsock" not in re.sub(r"#.*", "", conf)  # nothing twice (journald + socket)
    assert 'include(file="/etc/rsyslog.d/*.conf"' in conf


def test_receive_conf_files_each_host_by_its_source_address(prod):
    conf = r.receive_conf(prod)
    for h in prod.hosts:
        block = re.search(rf'if \$fromhost-ip == "{re.escape(h.private_ip)}" then \{{(.*?)\}}',
                          conf, re.S)
        assert block, h.name
        assert f'file="/var/log/remote/{h.name}/messages.log"' in block.group(1)


def test_receive_conf_never_files_by_the_senders_hostname(prod):
    """The host name a sender writes is shown in the line, never used to choose the file."""
    conf = r.receive_conf(prod)
    conditions = re.findall(r"^\s*if (.*) then", conf, re.M)
    assert conditions and all(c.startswith("$fromhost-ip == ") for c in conditions)
    assert "dynaFile" not in conf and "$hostname" not in conf


def test_receive_conf_admits_only_the_inventory_hosts_certificates(prod):
    conf = r.receive_conf(prod)
    peers = re.search(r"PermittedPeer=\[(.*?)\]", conf).group(1)
    assert sorted(re.findall(r'"([^"]+)"', peers)) == sorted(h.name for h in prod.hosts)
    assert 'StreamDriver.Mode="1" StreamDriver.AuthMode="x509/name"' in conf


def test_receive_conf_listens_on_ops_private_address_only(prod):
    conf = r.receive_conf(prod)
    inputs = re.findall(r'input\(type="imtcp"[^)]*\)', conf, re.S)
    assert len(inputs) == 1
    assert f'address="{prod.host("ops").private_ip}" port="6514"' in inputs[0]


def test_central_logging_only_the_bastion_gets_the_receiver(prod):
    for host in ALL:
        files = _files(r.central_logging(role_ctx(prod, host)))
        assert (r.RECEIVE in files) == (host == "ops"), host
        assert (r.LOGROTATE in files) == (host == "ops"), host


def test_central_logging_ops_remote_directories_are_0750_root_adm(prod):
    dirs = {x.path: x for x in r.central_logging(role_ctx(prod, "ops")).resources
            if isinstance(x, Directory) and x.path.startswith(r.REMOTE_DIR)}
    assert set(dirs) == {r.REMOTE_DIR, f"{r.REMOTE_DIR}/_unknown",
                         *(f"{r.REMOTE_DIR}/{h}" for h in ALL)}
    assert all((d.mode, d.owner, d.group) == (0o750, "root", "adm") for d in dirs.values())


def test_logrotate_conf_daily_kept_180_days(prod):
    conf = r.logrotate_conf()
    assert conf.startswith("#") and "/var/log/remote/*/*.log {" in conf
    for line in ("daily", "rotate 180", "maxage 180", "create 0640 root adm"):
        assert f"\t{line}\n" in conf


def test_central_logging_without_internal_tls_leaves_tls_files_alone_and_says_so(prod):
    d = r.central_logging(role_ctx(prod, "ops"))
    assert not set(_files(d)) & TLS_FILES
    svc = next(x for x in d.resources if isinstance(x, Service))
    assert svc.reason == r.NO_CA and "left as they are" in svc.reason


def test_central_logging_with_internal_tls_installs_keys_0600_before_the_configs(prod, internal_ca):
    d = r.central_logging(_with_tls(role_ctx(prod, "ops"), internal_ca))
    order = [x.path for x in d.resources if isinstance(x, File)]
    files = _files(d)
    assert TLS_FILES <= set(files)
    assert max(order.index(p) for p in TLS_FILES) < order.index(r.FORWARD)
    for key in (r.TLS.client_key, r.TLS.server_key):
        assert (files[key].mode, files[key].owner, files[key].sensitive) == (0o600, "root", True)
    assert files[r.TLS.client_key].data == internal_ca[1].log_client("ops").key_pem
    assert files[r.TLS.server_cert].data == internal_ca[1].log_server("ops").cert_pem
    svc = next(x for x in d.resources if isinstance(x, Service))
    assert svc.reason == ""


def test_central_logging_web_host_with_internal_tls_gets_its_own_leaf_and_no_server_key(
        prod, internal_ca):
    files = _files(r.central_logging(_with_tls(role_ctx(prod, "web-villeparisis"), internal_ca)))
    assert files[r.TLS.client_cert].data == internal_ca[1].log_client(
        "web-villeparisis").cert_pem
    assert r.TLS.server_key not in files


@pytest.mark.parametrize("host", ("ops", "web-villeparisis"))
def test_central_logging_every_config_validated_on_the_host(prod, host):
    files = _files(r.central_logging(role_ctx(prod, host)))
    for path in (r.MAIN, r.FORWARD, *((r.RECEIVE,) if host == "ops" else ())):
        assert files[path].validate == "/usr/sbin/rsyslogd -N1 -f {}"
        assert files[path].notify == ("restart-rsyslog",)


def test_central_logging_fresh_host_installs_rsyslog_with_gnutls_once(prod):
    d = r.central_logging(role_ctx(prod, "ops"))
    plan = decide(d.resources, d.handlers, HostFacts())
    installs = [a for a in plan.actions if a.key == "packages"]
    assert len(installs) == 1
    assert all(p in installs[0].summary for p in ("rsyslog", "rsyslog-gnutls", "logrotate"))
    assert [h.name for h in plan.handlers] == ["restart-rsyslog"]


@pytest.mark.parametrize("host", ("ops", "backup-a"))
def test_central_logging_converged_host_gets_no_action(prod, internal_ca, host):
    d = r.central_logging(_with_tls(role_ctx(prod, host), internal_ca))
    plan = decide(d.resources, d.handlers, converged(d))
    assert plan.is_noop, [a.summary for a in plan.actions]


def test_backups_never_hold_the_central_logs_nor_the_queue(prod):
    """R-GDPR-11: /var/log (the central logs are under it) is excluded from every backup,
    and nothing of rsyslog's spool or TLS directory is a backup path."""
    for site in prod.sites:
        paths, excludes, _mounts = backup_config.site_paths(site.name)
        assert "/var/log" in excludes and r.REMOTE_DIR.startswith("/var/log/")
        assert not [p for p in paths if p.startswith(("/var/log", r.WORK_DIR, "/etc/rsyslog"))]


# ---- the real validator ------------------------------------------------------------------------

def _rsyslogd() -> str:
    path = shutil.which("rsyslogd")
    if path is None:
        pytest.skip("rsyslogd is not installed (Debian's rsyslog + rsyslog-gnutls)")
    return path


@pytest.mark.parametrize("which", ("forward", "receive"))
def test_rendered_config_passes_rsyslogd_config_check(prod, tmp_path, which):
    conf = (r.forward_conf(role_ctx(prod, "web-villeparisis")) if which == "forward"
            else r.receive_conf(prod))
    path = tmp_path / f"{which}.conf"
    path.write_text(conf)
    proc = subprocess.run([_rsyslogd(), "-N1", "-f", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_rsyslogd_config_check_fails_on_a_misspelt_queue_setting(prod, tmp_path):
    """The validator catches a typo (what `validate` relies on)."""
    path = tmp_path / "bad.conf"
    path.write_text(r.forward_conf(role_ctx(prod, "proxy")).replace("queue.size", "queue.sise"))
    proc = subprocess.run([_rsyslogd(), "-N1", "-f", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "queue.sise" in proc.stderr
