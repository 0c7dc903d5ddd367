"""The baseline every host gets, whatever its role: hardened sshd (R-GDPR-5), default-deny
nftables (R-GDPR-6), unattended security upgrades (R-INC-2), time, logs, sysctls, and the
host hardening lynis grades (issue 17, roles/base/hardening.py, docs/hardening.md)."""
from __future__ import annotations

from engine.role import Desired, HostContext
from roles.base import firewall, hardening, sshd, system


def baseline(ctx: HostContext) -> Desired:
    # Order matters: packages first (nft, sshd, apt-config validate what follows), then sshd
    # and the firewall, then the rest. Every missing package is installed in one apt run.
    packages, *hygiene = system.resources(ctx)
    return Desired(
        resources=(packages, *sshd.resources(ctx), *firewall.resources(ctx), *hygiene,
                   *hardening.resources(ctx)),
        handlers=(sshd.HANDLER, firewall.HANDLER, *system.HANDLERS, hardening.HANDLER),
    )


def lynis_container_skips() -> tuple[tuple[str, str], ...]:
    """The lynis tests (`TEST` or `TEST:item`) that grade, in a container, what only a VM gets
    from this role: the machine's kernel (its sysctls, modules, LSM) and process accounting.
    The lab's audit skips exactly these (tests/lab/test_hardening.py, docs/hardening.md);
    everything else is graded as on a VM."""
    kernel = tuple((f"KRNL-6000:{key}", "kernel-wide sysctl: set on VMs, the machine's own "
                    "value in a container") for key, _ in system.KERNEL_SYSCTLS)
    return (*kernel,
            ("NETW-3200", "unused protocols refused at module load: VMs only"),
            ("USB-1000", "usb-storage refused at module load: VMs only"),
            ("STRG-1846", "firewire refused at module load: VMs only"),
            ("ACCT-9622", "process accounting (acct): VMs only, no CAP_SYS_PACCT in a container"),
            ("MACF-6290", "AppArmor: the machine's kernel LSM; the apparmor package on VMs"))
