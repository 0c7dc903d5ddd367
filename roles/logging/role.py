"""The central logging role (issue 17, lynis LOGG-2154; docs/logging.md).

Under the threat model (any one web host may be fully compromised) a host's own logs are the
first thing an intruder erases, so every host (web, proxy, storage, and ops itself) ships its
logs, as they are written, to the collector (the bastion, ops) where the sender can only add:

  every host  rsyslog reads the journal (imjournal: a saved cursor, nothing lost across an
              rsyslog restart) and forwards over TCP + TLS (gtls, 6514) to ops' private
              address, authenticating ops by its certificate name, through a disk-assisted
              queue bounded in size (QUEUE_MESSAGES in memory, QUEUE_DISK on disk)
  ops         imtcp + TLS on its private address, mutual (a log-client certificate of the
              internal CA, engine/tls_ca.py); each line filed under REMOTE_DIR/<host>/ by the
              TCP source address (anti-spoofed on the private network, issue 19), never by
              the host name the sender writes; rotated daily, kept KEEP_DAYS days

Every rendered config is validated on the host by `rsyslogd -N1` (`logrotate -d` for the
rotation) before it replaces the live one. Without the internal CA on the admin's machine
(Settings.internal_tls is None) the TLS files on the hosts are left as they are, and each
host's report says so. The firewall opening is roles/base/firewall.py's (SYSLOG_TLS).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.inventory import Host, Inventory
from engine.render import render
from engine.resources import Directory, File, Handler, Packages, Resource, Service
from engine.role import Desired, HostContext
from roles.base.firewall import SYSLOG_TLS

RSYSLOGD = "/usr/sbin/rsyslogd"
VALIDATE = f"{RSYSLOGD} -N1 -f {{}}"
MAIN = "/etc/rsyslog.conf"
FORWARD = "/etc/rsyslog.d/50-hosting-forward.conf"
RECEIVE = "/etc/rsyslog.d/40-hosting-receive.conf"
# Under /etc/rsyslog.d: the paths Debian's AppArmor profile of rsyslogd already lets it read.
TLS_DIR = "/etc/rsyslog.d/tls"
WORK_DIR = "/var/spool/rsyslog"
LOGROTATE = "/etc/logrotate.d/hosting-remote-logs"
REMOTE_DIR = "/var/log/remote"
LOG_FILE = "messages.log"
UNKNOWN = "_unknown"  # a source that is none of the inventory's hosts (never expected)
# The queue's bound on each sender: what an outage of the collector may hold without loss.
QUEUE_MESSAGES = 100000
QUEUE_DISK = "1g"
RESUME_INTERVAL = 10  # seconds between reconnection attempts
KEEP_DAYS = 180  # six months: CNIL's recommendation for security logs (docs/logging.md)
MAX_SESSIONS = 200

RESTART = Handler("restart-rsyslog", ("systemctl", "restart", "rsyslog.service"))
NO_CA = ("no internal CA on the admin's machine (`fab ca.create`): the central logging's TLS "
         f"files in {TLS_DIR} are left as they are")


@dataclass(frozen=True)
class TlsPaths:
    ca: str = f"{TLS_DIR}/ca.pem"
    client_cert: str = f"{TLS_DIR}/client.pem"
    client_key: str = f"{TLS_DIR}/client.key"
    server_cert: str = f"{TLS_DIR}/server.pem"
    server_key: str = f"{TLS_DIR}/server.key"


TLS = TlsPaths()


def collector(inv: Inventory) -> Host:
    """Where every host's logs go: the bastion (ops), on its private address (the inventory
    schema requires one for every host)."""
    return inv.bastion


def main_conf(ctx: HostContext) -> str:
    return render("logging/rsyslog.conf.j2", host=ctx.host.name, work_dir=WORK_DIR)


def forward_conf(ctx: HostContext) -> str:
    ops = collector(ctx.inventory)
    return render("logging/forward.conf.j2", host=ctx.host.name, collector=ops.name,
                  target=ops.private_ip, port=SYSLOG_TLS, tls=TLS,
                  queue_messages=QUEUE_MESSAGES, queue_disk=QUEUE_DISK,
                  resume_interval=RESUME_INTERVAL)


def receive_conf(inv: Inventory) -> str:
    ops = collector(inv)
    # UNKNOWN starts with "_": never a host name (the inventory's names start with a letter).
    return render("logging/receive.conf.j2", host=ops.name, address=ops.private_ip,
                  port=SYSLOG_TLS, hosts=inv.hosts, tls=TLS, remote_dir=REMOTE_DIR,
                  log_file=LOG_FILE, unknown=UNKNOWN, max_sessions=MAX_SESSIONS)


def logrotate_conf() -> str:
    return render("logging/logrotate.j2", remote_dir=REMOTE_DIR, keep_days=KEEP_DAYS)


def tls_files(ctx: HostContext, is_collector: bool) -> list[Resource]:
    """The CA, this host's log-client leaf and, on ops, the listener's leaf; keys first and
    0600 root, so rsyslog never loads a new certificate with the old key."""
    tls = ctx.settings.internal_tls
    if tls is None:
        return []
    notify = (RESTART.name,)
    leaf = tls.log_client(ctx.host.name)
    out: list[Resource] = [
        File(TLS.client_key, leaf.key_pem, 0o600, sensitive=True, notify=notify),
        File(TLS.client_cert, leaf.cert_pem, 0o644, notify=notify),
        File(TLS.ca, tls.ca_pem, 0o644, notify=notify),
    ]
    if is_collector:
        server = tls.log_server(ctx.host.name)
        out[:0] = [File(TLS.server_key, server.key_pem, 0o600, sensitive=True, notify=notify),
                   File(TLS.server_cert, server.cert_pem, 0o644, notify=notify)]
    return out


def collector_resources(inv: Inventory) -> list[Resource]:
    return [
        Directory(REMOTE_DIR, 0o750, group="adm"),
        *(Directory(f"{REMOTE_DIR}/{h.name}", 0o750, group="adm") for h in inv.hosts),
        Directory(f"{REMOTE_DIR}/{UNKNOWN}", 0o750, group="adm"),
        File(RECEIVE, receive_conf(inv), 0o644, validate=VALIDATE, notify=(RESTART.name,)),
        File(LOGROTATE, logrotate_conf(), 0o644, validate="/usr/sbin/logrotate -d {}"),
    ]


def central_logging(ctx: HostContext) -> Desired:
    is_collector = ctx.host.name == collector(ctx.inventory).name
    packages = ("rsyslog", "rsyslog-gnutls") + (("logrotate",) if is_collector else ())
    resources: list[Resource] = [
        Packages(packages),
        Directory(TLS_DIR, 0o700),
        Directory(WORK_DIR, 0o700),
        *tls_files(ctx, is_collector),
        File(FORWARD, forward_conf(ctx), 0o644, validate=VALIDATE, notify=(RESTART.name,)),
    ]
    if is_collector:
        resources += collector_resources(ctx.inventory)
    no_ca = ctx.settings.internal_tls is None
    resources += [
        File(MAIN, main_conf(ctx), 0o644, validate=VALIDATE, notify=(RESTART.name,)),
        Service("rsyslog.service", reason=NO_CA if no_ca else ""),
    ]
    return Desired(tuple(resources), (RESTART,))
