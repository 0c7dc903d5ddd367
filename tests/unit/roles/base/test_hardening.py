"""The baseline's host hardening (issue 17, docs/hardening.md): what VMs and containers get,
the files as rendered (validated by their own tool where one exists), the lynis tests the lab
may skip, and the values deliberately kept (no maximum password age, umask 022)."""
from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from engine.decide import decide
from engine.facts import CommandFact, HostFacts, SystemFacts
from engine.resources import Check, File, Packages, Service
from engine.role import HostContext
from roles.base import baseline, hardening, lynis_container_skips, system

NSPAWN = "systemd-nspawn"


def by_key(ctx: HostContext) -> dict:
    return {r.key: r for r in baseline(ctx).resources}


def test_resources_vm_refuses_unused_modules_and_runs_process_accounting(
        ctx_for: Callable[..., HostContext]) -> None:
    res = by_key(ctx_for("proxy"))
    modprobe = res[f"file:{hardening.MODPROBE_FILE}"].content
    for module, _why in hardening.UNUSED_MODULES:
        assert f"install {module} /bin/false\n" in modprobe
    for module in ("dccp", "sctp", "rds", "tipc", "usb-storage"):
        assert f"blacklist {module}\n" in modprobe
    acct = res["service:acct.service"]
    assert (acct.enabled, acct.running, acct.reason) == (True, True, "")
    packages = next(r for r in baseline(ctx_for("proxy")).resources if isinstance(r, Packages))
    assert {"acct", "apparmor", "libpam-tmpdir", "lynis"} <= set(packages.names)


def test_decide_container_notes_modules_and_accounting_and_writes_no_modprobe_file(
        ctx_for: Callable[..., HostContext]) -> None:
    ctx = ctx_for("backup-a", container=NSPAWN)
    resources = hardening.resources(ctx)
    assert not [r for r in resources if isinstance(r, File) and r.path == hardening.MODPROBE_FILE]
    plan = decide(resources, (hardening.HANDLER,),
                  HostFacts(system=SystemFacts(container=NSPAWN)))
    notes = {n.key: n.text for n in plan.notes}
    assert "usb-storage" in notes["service:systemd-modules-load.service"]
    assert "CAP_SYS_PACCT" in notes["service:acct.service"]
    assert not [a for a in plan.actions if a.key == "service:acct.service"]
    packages = next(r for r in baseline(ctx).resources if isinstance(r, Packages))
    assert "acct" not in packages.names and "libpam-pwquality" in packages.names


def test_login_defs_sets_a_minimum_age_and_keeps_no_maximum_and_umask_022() -> None:
    text = (Path(__file__).resolve().parents[4] / "templates/base/login.defs.j2").read_text()
    values = dict(line.split(None, 1) for line in text.splitlines()
                  if line.strip() and not line.startswith("#"))
    # A maximum age would expire the password-less accounts' "passwords": pam_unix's account
    # check then stops their cron jobs and certificate logins. 027 would reach sudo sessions.
    assert (values["PASS_MIN_DAYS"], values["PASS_MAX_DAYS"], values["UMASK"]) == \
        ("1", "99999", "022")
    assert values["ENCRYPT_METHOD"] == "YESCRYPT"


def test_shell_profile_is_valid_sh_with_a_readonly_timeout_and_no_core_dumps(
        ctx_for: Callable[..., HostContext], tmp_path: Path) -> None:
    f = by_key(ctx_for("ops"))["file:/etc/profile.d/60-hosting-shell.sh"]
    assert f.validate == "/bin/sh -n {}"
    script = tmp_path / "p.sh"
    script.write_text(f.content)
    assert subprocess.run(["/bin/sh", "-n", str(script)], check=False).returncode == 0
    out = subprocess.run(["/bin/sh", "-c", f". {script}; echo $TMOUT; ulimit -c; TMOUT=1"],
                         capture_output=True, text=True, check=False)
    assert out.stdout.split()[:2] == [str(hardening.SHELL_TIMEOUT_S), "0"]
    assert out.returncode != 0 and "TMOUT" in out.stderr  # readonly: a user cannot lift it


def test_resources_disable_core_dumps_for_systemd_and_pam_limits(
        ctx_for: Callable[..., HostContext]) -> None:
    res = by_key(ctx_for("web-villeparisis"))
    coredump = res["file:/etc/systemd/coredump.conf.d/60-hosting.conf"].content
    assert "Storage=none\n" in coredump and "ProcessSizeMax=0\n" in coredump
    limits = res["file:/etc/security/limits.d/60-hosting-core.conf"].content
    assert "* hard core 0\n" in limits
    assert ("fs.suid_dumpable", "0") in system.KERNEL_SYSCTLS


def test_decide_aide_baseline_taken_once_in_a_background_unit(
        ctx_for: Callable[..., HostContext]) -> None:
    check = by_key(ctx_for("backup-b"))["check:aide-database"]
    assert isinstance(check, Check)
    assert check.apply[:2] == ("systemd-run", f"--unit={hardening.AIDE_INIT_UNIT}")
    assert "--property=Nice=19" in check.apply and check.apply[-3] == "/usr/sbin/aideinit"
    missing = HostFacts(commands={"aide-database": CommandFact(3, "no AIDE database yet")})
    assert [a.key for a in decide([check], (), missing).actions] == ["check:aide-database"]
    present = HostFacts(commands={"aide-database": CommandFact(0, "")})
    assert not decide([check], (), present).actions


def test_lynis_container_skips_cover_every_kernel_sysctl_and_vm_only_item() -> None:
    skips = dict(lynis_container_skips())
    assert {f"KRNL-6000:{k}" for k, _ in system.KERNEL_SYSCTLS} <= set(skips)
    assert {"USB-1000", "STRG-1846", "NETW-3200", "ACCT-9622", "MACF-6290"} <= set(skips)
    # Nothing the role applies in a container is skipped: no net.* key, no sshd, no PAM.
    assert not [s for s in skips if s.startswith(("KRNL-6000:net.", "SSH", "AUTH", "DEB"))]


def test_unattended_upgrades_keep_managed_conffiles_without_a_prompt(
        ctx_for: Callable[..., HostContext]) -> None:
    f = by_key(ctx_for("proxy"))["file:/etc/apt/apt.conf.d/52hosting-unattended-upgrades"]
    assert '"--force-confold";' in f.content and '"--force-confdef";' in f.content
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in f.content


def test_resources_banner_warns_without_naming_the_system(
        ctx_for: Callable[..., HostContext]) -> None:
    res = by_key(ctx_for("proxy"))
    for path in ("/etc/issue", "/etc/issue.net"):
        text = res[f"file:{path}"].content.lower()
        assert "authorised" in text and "monitored" in text
        assert "debian" not in text and "\\n" not in text  # no OS name, no getty escapes
    assert isinstance(res["service:ssh.service"], Service)


def test_resources_aide_checksums_switched_before_the_baseline_is_taken(
        ctx_for: Callable[..., HostContext]) -> None:
    keys = list(by_key(ctx_for("web-villeparisis")))
    assert keys.index("check:aide-checksums") < keys.index("check:aide-database")
    check = by_key(ctx_for("web-villeparisis"))["check:aide-checksums"]
    script = check.apply[-1]
    # validated before it replaces the live file; the old file and baseline are kept aside
    assert script.index("aide --config-check") < script.index(f"mv {hardening.AIDE_CONF}.")
    assert f"cp -p {hardening.AIDE_CONF} {hardening.AIDE_CONF}.hosting-saved" in script
    assert f"mv {hardening.AIDE_DB} {hardening.AIDE_DB}.before-sha512" in script
    assert script.endswith(" ".join(hardening.AIDE_INIT))  # a new baseline in this deploy
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0
    wrong = HostFacts(commands={"aide-checksums": CommandFact(3, "not SHA-512 only")})
    assert [a.key for a in decide([check], (), wrong).actions] == ["check:aide-checksums"]


def test_resources_aide_switch_rewrites_only_the_checksums_line(tmp_path: Path) -> None:
    conf = tmp_path / "aide.conf"
    conf.write_text("database_in=file:/var/lib/aide/aide.db\nChecksums = H\n"
                    "StaticFile = m+c+Checksums\n")
    script = (hardening.AIDE_SWITCH.replace(hardening.AIDE_CONF, str(conf))
              .replace(hardening.AIDE_DB, str(tmp_path / "aide.db"))
              .replace("aide --config-check -c", "test -s")  # no AIDE on this machine
              .replace(" ".join(hardening.AIDE_INIT), "true"))
    assert subprocess.run(["sh", "-c", script]).returncode == 0
    assert conf.read_text() == ("database_in=file:/var/lib/aide/aide.db\nChecksums = sha512\n"
                                "StaticFile = m+c+Checksums\n")
    assert (tmp_path / "aide.conf.hosting-saved").read_text().count("Checksums = H") == 1


def test_resources_shm_remounted_noexec_by_an_enabled_unit(
        ctx_for: Callable[..., HostContext]) -> None:
    res = by_key(ctx_for("proxy"))
    unit = res[f"file:/etc/systemd/system/{hardening.SHM_UNIT}"]
    assert "ExecStart=/usr/bin/mount -o remount,nosuid,nodev,noexec /dev/shm" in unit.content
    assert unit.notify == (hardening.HANDLER.name,)
    assert res[f"service:{hardening.SHM_UNIT}"] == Service(hardening.SHM_UNIT, enabled=True,
                                                            running=True)


def test_resources_proc_hidepid_tmp_and_dev_noexec_by_an_enabled_unit(
        ctx_for: Callable[..., HostContext]) -> None:
    res = by_key(ctx_for("web-villeparisis"))
    unit = res[f"file:/etc/systemd/system/{hardening.MOUNT_UNIT}"]
    starts = [line for line in unit.content.splitlines() if line.startswith("ExecStart=")]
    assert starts == [
        "ExecStart=/usr/bin/mount -o remount,hidepid=invisible /proc",
        "ExecStart=/bin/sh -c 'mountpoint -q /tmp || mount --bind /tmp /tmp'",
        "ExecStart=/usr/bin/mount -o remount,bind,nosuid,nodev,noexec /tmp",
        "ExecStart=/usr/bin/mount -o remount,bind,nosuid,noexec /dev"]
    assert unit.notify == (hardening.HANDLER.name,)
    assert res[f"service:{hardening.MOUNT_UNIT}"] == Service(hardening.MOUNT_UNIT, enabled=True,
                                                              running=True)
