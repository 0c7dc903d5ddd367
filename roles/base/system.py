"""Host hygiene every host gets: packages, unattended security upgrades (R-INC-2), time sync,
journald limits, a minimal set of services, network sysctl hardening.

Containers (the lab): systemd-timesyncd does not run there (ConditionVirtualization=
!container: the host kernel's clock is the container's) and only net.* sysctls can be set;
both are detected with `systemd-detect-virt -c` and reported as notes, never silently skipped.
"""
from __future__ import annotations

from engine.render import render
from engine.resources import File, Handler, Packages, Resource, Service, Sysctl
from engine.role import HostContext
from roles.base import hardening

PACKAGES = ("openssh-server", "nftables", "sudo", "python3", "unattended-upgrades",
            "needrestart", "systemd-timesyncd")

# Units outside the minimal set: stopped and masked wherever a package brought them.
UNWANTED_UNITS = ("rpcbind.service", "rpcbind.socket", "avahi-daemon.service",
                  "avahi-daemon.socket", "cups.service", "cups-browsed.service",
                  "ModemManager.service", "bluetooth.service", "nfs-server.service")

# Kernel network hardening (CIS / dev-sec os-hardening values). Never forwarding.
NET_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net.ipv4.ip_forward", "0"),
    ("net.ipv4.conf.all.rp_filter", "1"),
    ("net.ipv4.conf.default.rp_filter", "1"),
    ("net.ipv4.conf.all.accept_redirects", "0"),
    ("net.ipv4.conf.default.accept_redirects", "0"),
    ("net.ipv4.conf.all.secure_redirects", "0"),
    ("net.ipv4.conf.default.secure_redirects", "0"),
    ("net.ipv4.conf.all.send_redirects", "0"),
    ("net.ipv4.conf.default.send_redirects", "0"),
    ("net.ipv4.conf.all.accept_source_route", "0"),
    ("net.ipv4.conf.default.accept_source_route", "0"),
    ("net.ipv4.conf.all.log_martians", "1"),
    ("net.ipv4.conf.default.log_martians", "1"),
    ("net.ipv4.icmp_echo_ignore_broadcasts", "1"),
    ("net.ipv4.icmp_ignore_bogus_error_responses", "1"),
    ("net.ipv4.tcp_syncookies", "1"),
    ("net.ipv4.tcp_rfc1337", "1"),
    ("net.ipv6.conf.all.forwarding", "0"),
    ("net.ipv6.conf.all.accept_redirects", "0"),
    ("net.ipv6.conf.default.accept_redirects", "0"),
    ("net.ipv6.conf.all.accept_source_route", "0"),
    ("net.ipv6.conf.default.accept_source_route", "0"),
)
# Kernel-wide keys: VMs only (a container cannot write them).
KERNEL_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("kernel.kptr_restrict", "2"),
    ("kernel.dmesg_restrict", "1"),
    ("kernel.yama.ptrace_scope", "1"),
    ("kernel.randomize_va_space", "2"),
    ("fs.protected_hardlinks", "1"),
    ("fs.protected_symlinks", "1"),
    ("fs.protected_fifos", "2"),
    ("fs.protected_regular", "2"),
    ("fs.suid_dumpable", "0"),
    # lynis KRNL-6000's profile (issue 17): no line discipline autoloading by unprivileged
    # users, core files named by pid, Ctrl-Alt-Del does not reboot, no unprivileged eBPF
    # (1: cannot be turned back on without a reboot), no perf events for unprivileged users.
    ("dev.tty.ldisc_autoload", "0"),
    ("kernel.core_uses_pid", "1"),
    ("kernel.ctrl-alt-del", "0"),
    ("kernel.unprivileged_bpf_disabled", "1"),
    ("kernel.perf_event_paranoid", "3"),
)
SYSCTL_FILE = "/etc/sysctl.d/60-hosting-hardening.conf"
CONTAINER_TIMESYNC = ("systemd-timesyncd does not run in a container "
                      "(ConditionVirtualization=!container): the host's clock is used")

HANDLERS = (
    Handler("restart-journald", ("systemctl", "restart", "systemd-journald.service")),
    # try-restart: nothing to do where it does not run (containers).
    Handler("restart-timesyncd", ("systemctl", "try-restart", "systemd-timesyncd.service")),
)


def sysctls(ctx: HostContext) -> tuple[tuple[str, str], ...]:
    return NET_SYSCTLS if ctx.system.in_container else NET_SYSCTLS + KERNEL_SYSCTLS


def resources(ctx: HostContext) -> list[Resource]:
    container = ctx.system.in_container
    apt_check = "/usr/bin/apt-config -c {} dump >/dev/null"
    out: list[Resource] = [
        Packages(PACKAGES + hardening.packages(ctx)),
        # R-INC-2: security updates every day, unattended; services using an updated library
        # are restarted by needrestart (automatic mode), reboots stay planned work (R-MNT-1).
        File("/etc/apt/apt.conf.d/20auto-upgrades", render("base/20auto-upgrades.j2"),
             validate=apt_check),
        File("/etc/apt/apt.conf.d/52hosting-unattended-upgrades",
             render("base/52hosting-unattended-upgrades.j2"), validate=apt_check),
        File("/etc/needrestart/conf.d/50-hosting.conf", render("base/needrestart.conf.j2"),
             validate="/usr/bin/perl -c {} 2>&1"),
        Service("apt-daily.timer"),
        Service("apt-daily-upgrade.timer"),
        Service("unattended-upgrades.service", running=None),
        # Time
        File("/etc/systemd/timesyncd.conf.d/50-hosting.conf",
             render("base/timesyncd.conf.j2", servers=ctx.settings.ntp_servers),
             notify=("restart-timesyncd",)),
        Service("systemd-timesyncd.service", running=None if container else True,
                reason=CONTAINER_TIMESYNC if container else ""),
        # Logs: bounded size, bounded retention (they hold IP addresses: personal data).
        File("/etc/systemd/journald.conf.d/50-hosting.conf", render("base/journald.conf.j2"),
             notify=("restart-journald",)),
        # Kernel: persisted for boot, and set now.
        File(SYSCTL_FILE, render("base/sysctl.conf.j2", sysctls=sysctls(ctx),
                                 container=container)),
    ]
    out += [Sysctl(k, v) for k, v in NET_SYSCTLS + KERNEL_SYSCTLS]
    out += [Service(u, enabled=None, running=None, masked=True) for u in UNWANTED_UNITS]
    return out
