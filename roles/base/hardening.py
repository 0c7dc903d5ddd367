"""Host hardening beyond sshd and the firewall (issue 17, docs/hardening.md): what lynis
suggests and fits a server. Every file here is validated by its own tool where one exists.

Taken everywhere: PAM private temporary directories (libpam-tmpdir) and a password quality
module (libpam-pwquality), debsums for package integrity, lynis itself (the audit an admin
reruns on prod), core dumps off (systemd-coredump, limits, shell), an idle shell timeout,
a legal banner, a minimum password age.
VMs only (a container shares the machine's kernel): kernel modules of unused protocols and
storage buses refused at load time, process accounting (accton needs CAP_SYS_PACCT). In a
container each is reported as a note, never silently skipped.
Refused, with the reasons: docs/hardening.md.
"""
from __future__ import annotations

from engine.render import render
from engine.resources import Check, File, Handler, Resource, Service
from engine.role import HostContext

# Installed in the baseline's single apt run (system.resources).
PACKAGES = ("libpam-tmpdir", "libpam-pwquality", "debsums", "aide", "aide-common", "lynis")
# apparmor: Debian's kernels enable the LSM, the package loads the profiles (lynis MACF-6290).
VM_PACKAGES = ("acct", "apparmor")
AIDE_DB = "/var/lib/aide/aide.db"
AIDE_INIT_UNIT = "hosting-aide-init.service"
AIDE_CONF = "/etc/aide/aide.conf"
# lynis FINT-4402. Debian's `Checksums = H` is every hash AIDE has (a dozen, MD5 and SHA-1
# among them): SHA-512 alone is as strong and makes the daily check several times cheaper.
AIDE_CHECKSUMS = "Checksums = sha512"
# AIDE's baseline, taken in the background at the lowest CPU and I/O priority.
AIDE_INIT = ("systemd-run", f"--unit={AIDE_INIT_UNIT}", "--collect", "--property=Nice=19",
             "--property=IOSchedulingClass=idle", "/usr/sbin/aideinit", "--yes", "--force")
# A baseline taken with other checksums would make the next check report every file: it is
# kept aside (not deleted) and a new one is taken at once (in the same deploy: the baseline's
# own check below read its facts before this ran).
AIDE_SWITCH = (
    f"set -e; sed 's/^Checksums = .*/{AIDE_CHECKSUMS}/' {AIDE_CONF} > {AIDE_CONF}.hosting-new; "
    f"aide --config-check -c {AIDE_CONF}.hosting-new; "
    f"grep -qx '{AIDE_CHECKSUMS}' {AIDE_CONF}.hosting-new; "
    f"cp -p {AIDE_CONF} {AIDE_CONF}.hosting-saved; "
    f"chmod --reference={AIDE_CONF} {AIDE_CONF}.hosting-new; "
    f"mv {AIDE_CONF}.hosting-new {AIDE_CONF}; "
    f"if [ -e {AIDE_DB} ]; then mv {AIDE_DB} {AIDE_DB}.before-sha512; fi; "
    # a baseline still being taken with the old checksums is stopped first
    f"systemctl stop --quiet {AIDE_INIT_UNIT} 2>/dev/null || true; " + " ".join(AIDE_INIT))
SHM_UNIT = "hosting-shm-noexec.service"
MOUNT_UNIT = "hosting-mount-options.service"
HANDLER = Handler("base-daemon-reload", ("systemctl", "daemon-reload"))

# lynis NETW-3200, USB-1000, STRG-1846: nothing here uses them; `install X /bin/false` refuses
# even an explicit modprobe (a blacklist line only stops alias-based autoloading).
UNUSED_MODULES: tuple[tuple[str, str], ...] = (
    ("dccp", "network protocol"), ("sctp", "network protocol"), ("rds", "network protocol"),
    ("tipc", "network protocol"), ("usb-storage", "storage bus"),
    ("firewire-core", "storage bus"), ("firewire-ohci", "storage bus"),
)
MODPROBE_FILE = "/etc/modprobe.d/60-hosting-hardening.conf"
CONTAINER_MODULES = ("kernel module refusals skipped in a container (systemd-detect-virt -c): "
                     "the machine's kernel is not the host's (" + ", ".join(
                         m for m, _ in UNUSED_MODULES) + ")")
CONTAINER_ACCT = ("process accounting skipped in a container (systemd-detect-virt -c): accton "
                  "needs CAP_SYS_PACCT, which a container does not have")

LOGIN_DEFS = "/etc/login.defs"
# lynis SHLL-6220: interactive shells left idle are closed (Fabric's commands are not
# interactive shells and are not affected).
SHELL_TIMEOUT_S = 900
BANNER = ("Authorised access only. This system is private property; every session and command "
          "is logged and monitored, and records may be used as evidence. Disconnect now if you "
          "are not authorised.")


def packages(ctx: HostContext) -> tuple[str, ...]:
    return PACKAGES if ctx.system.in_container else PACKAGES + VM_PACKAGES


def resources(ctx: HostContext) -> list[Resource]:
    container = ctx.system.in_container
    out: list[Resource] = [
        # lynis AUTH-9286 (minimum age), with Debian 13's other values; see login.defs.j2 for
        # what is refused (maximum age, umask 027) and why.
        File(LOGIN_DEFS, render("base/login.defs.j2")),
        # lynis BANN-7126/7130: shown before a console login (sshd keeps `Banner none`: sshd-46).
        File("/etc/issue", BANNER + "\n"),
        File("/etc/issue.net", BANNER + "\n"),
        # lynis SHLL-6220: idle interactive shells close; readonly so a user cannot lift it.
        File("/etc/profile.d/60-hosting-shell.sh",
             render("base/profile-shell.sh.j2", seconds=SHELL_TIMEOUT_S),
             validate="/bin/sh -n {}"),
        # lynis KRNL-5820: no core dumps anywhere (they hold secrets: database passwords,
        # session keys). fs.suid_dumpable=0 is in system.KERNEL_SYSCTLS.
        File("/etc/systemd/coredump.conf.d/60-hosting.conf", render("base/coredump.conf.j2")),
        File("/etc/security/limits.d/60-hosting-core.conf",
             "# Managed by `fab deploy` (roles/base/hardening.py): no core dumps.\n"
             "* hard core 0\n* soft core 0\n"),
        # lynis FINT-4402: SHA-512 only (AIDE_CHECKSUMS), validated by aide --config-check;
        # before the baseline below, which is taken again after a switch.
        Check("aide-checksums",
              ("sh", "-c", f"grep -qx '{AIDE_CHECKSUMS}' {AIDE_CONF} || "
                           "{ echo 'AIDE checksums are not SHA-512 only'; exit 3; }"),
              ("sh", "-c", AIDE_SWITCH),
              summary="AIDE: SHA-512 checksums (the old config and baseline kept aside)"),
        # lynis FINT-4350: AIDE's baseline of the system's files, taken once per host (about
        # 20 s of CPU), in the background at the lowest CPU and I/O priority so a deploy does
        # not wait for it and the sites do not feel it; Debian's dailyaidecheck.timer compares
        # against it every day and writes what changed to /var/log/aide/aide.log.
        Check("aide-database",
              ("sh", "-c", f"test -s {AIDE_DB} || systemctl is-active --quiet {AIDE_INIT_UNIT} "
                           "|| { echo 'no AIDE database yet'; exit 3; }"),
              AIDE_INIT,
              summary="take AIDE's baseline (aideinit, in the background)"),
    ]
    # lynis FILE-6374 (CIS): nothing runs from /dev/shm; no exec, suid or device files there.
    # A unit, not fstab (the image's fstab is the provider's): it remounts at every boot and,
    # started by the deploy, now.
    out += [File(f"/etc/systemd/system/{SHM_UNIT}", render("base/shm-noexec.service.j2"),
                 notify=(HANDLER.name,)),
            Service(SHM_UNIT, enabled=True, running=True)]
    # lynis FILE-6344, FILE-6374: /proc hidepid, /tmp and /dev noexec (the unit says why); a
    # unit for the same reason as above.
    out += [File(f"/etc/systemd/system/{MOUNT_UNIT}", render("base/mount-options.service.j2"),
                 notify=(HANDLER.name,)),
            Service(MOUNT_UNIT, enabled=True, running=True)]
    if container:
        # Notes only: nothing is installed or written (systemd-modules-load does not run in a
        # container either).
        out += [Service("systemd-modules-load.service", enabled=None, running=None,
                        reason=CONTAINER_MODULES),
                Service("acct.service", enabled=None, running=None, reason=CONTAINER_ACCT)]
    else:
        out += [File(MODPROBE_FILE, render("base/modprobe-hardening.conf.j2",
                                           modules=UNUSED_MODULES)),
                Service("acct.service")]
    return out

