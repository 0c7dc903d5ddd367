"""The baseline's host hygiene and the whole baseline: containers vs VMs, and a plan that
makes sense for every host of a real inventory."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.decide import Note, decide
from engine.facts import HostFacts, SystemFacts
from engine.resources import File, Packages, Service, Sysctl
from engine.role import HostContext
from roles.base import baseline, system

ALL = ("proxy", "ops", "web-villeparisis", "web-participation", "backup-a", "backup-b")


def by_key(ctx: HostContext) -> dict:
    return {r.key: r for r in system.resources(ctx)}


def test_resources_vm_persists_kernel_and_network_sysctls(
        ctx_for: Callable[..., HostContext]) -> None:
    conf = by_key(ctx_for("proxy"))[f"file:{system.SYSCTL_FILE}"]
    text = conf.content
    assert "kernel.kptr_restrict = 2" in text and "net.ipv4.ip_forward = 0" in text


def test_resources_container_persists_only_net_sysctls(
        ctx_for: Callable[..., HostContext]) -> None:
    text = by_key(ctx_for("proxy", container="systemd-nspawn"))[
        f"file:{system.SYSCTL_FILE}"].content
    keys = [line.split(" = ")[0] for line in text.splitlines() if " = " in line]
    assert keys and all(k.startswith("net.") for k in keys)


def test_decide_container_skips_kernel_sysctls_and_timesync_with_notes(
        ctx_for: Callable[..., HostContext]) -> None:
    ctx = ctx_for("web-villeparisis", container="systemd-nspawn")
    facts = HostFacts(system=SystemFacts(container="systemd-nspawn"),
                      sysctls={k: "0" for k, _ in system.NET_SYSCTLS + system.KERNEL_SYSCTLS})
    plan = decide(system.resources(ctx), system.HANDLERS, facts)
    skipped = {n.key for n in plan.notes}
    assert {f"sysctl:{k}" for k, _ in system.KERNEL_SYSCTLS} <= skipped
    assert "service:systemd-timesyncd.service" in skipped
    assert not any(a.key.startswith("sysctl:kernel.") for a in plan.actions)
    timesync = by_key(ctx)["service:systemd-timesyncd.service"]
    assert timesync.running is None and timesync.enabled


def test_decide_vm_sets_kernel_sysctls_and_runs_timesync(
        ctx_for: Callable[..., HostContext]) -> None:
    ctx = ctx_for("web-villeparisis")
    facts = HostFacts(sysctls={k: "0" for k, _ in system.KERNEL_SYSCTLS})
    plan = decide(system.resources(ctx), system.HANDLERS, facts)
    assert any(a.key == "sysctl:kernel.kptr_restrict" for a in plan.actions)
    assert not [n for n in plan.notes if "container" in n.text]
    assert by_key(ctx)["service:systemd-timesyncd.service"].running is True


def test_resources_unattended_upgrades_security_only_and_validated(
        ctx_for: Callable[..., HostContext]) -> None:
    res = by_key(ctx_for("ops"))
    uu = res["file:/etc/apt/apt.conf.d/52hosting-unattended-upgrades"]
    assert "#clear Unattended-Upgrade::Origins-Pattern;" in uu.content
    assert "label=Debian-Security" in uu.content
    assert 'Automatic-Reboot "false"' in uu.content
    auto = res["file:/etc/apt/apt.conf.d/20auto-upgrades"]
    assert 'APT::Periodic::Unattended-Upgrade "1";' in auto.content
    assert all(r.validate and r.validate.startswith("/usr/bin/apt-config")
               for r in (uu, auto))
    assert res["service:apt-daily-upgrade.timer"].running is True


def test_resources_journald_bounded_and_unwanted_units_masked(
        ctx_for: Callable[..., HostContext]) -> None:
    res = by_key(ctx_for("backup-b"))
    journald = res["file:/etc/systemd/journald.conf.d/50-hosting.conf"]
    assert "SystemMaxUse=500M" in journald.content and journald.notify == ("restart-journald",)
    masked = [r for r in res.values() if isinstance(r, Service) and r.masked]
    assert {r.unit for r in masked} >= {"rpcbind.service", "avahi-daemon.service"}


@pytest.mark.parametrize("host", ALL)
def test_baseline_every_host_packages_first_unique_keys_known_handlers(
        host: str, ctx_for: Callable[..., HostContext]) -> None:
    d = baseline(ctx_for(host, container="systemd-nspawn"))
    assert isinstance(d.resources[0], Packages)
    plan = decide(d.resources, d.handlers, HostFacts())  # raises on duplicates/unknown
    assert plan.actions[0].summary.startswith("install ")
    assert {h.name for h in plan.handlers} == {"reload-sshd", "reload-nftables",
                                               "restart-journald", "restart-timesyncd",
                                               "base-daemon-reload"}
    assert sum(isinstance(r, Sysctl) for r in d.resources) == len(
        system.NET_SYSCTLS + system.KERNEL_SYSCTLS)


def test_decide_notes_for_container_say_why(ctx_for: Callable[..., HostContext]) -> None:
    ctx = ctx_for("proxy", container="systemd-nspawn")
    plan = decide(*_flat(baseline(ctx)), HostFacts(system=ctx.system,
                                                   sysctls={"kernel.kptr_restrict": "1"}))
    texts = [str(n) for n in plan.notes if isinstance(n, Note)]
    assert any("ConditionVirtualization" in t for t in texts)
    assert any("systemd-detect-virt" in t for t in texts)


def _flat(d):  # noqa: ANN001, ANN202 - test helper
    return d.resources, d.handlers


def test_resources_files_are_root_owned(ctx_for: Callable[..., HostContext]) -> None:
    for r in baseline(ctx_for("ops")).resources:
        if isinstance(r, File):
            assert (r.owner, r.group) == ("root", "root")
            assert not r.mode & 0o002, r.path
