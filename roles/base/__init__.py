"""The baseline every host gets, whatever its role: hardened sshd (R-GDPR-5), default-deny
nftables (R-GDPR-6), unattended security upgrades (R-INC-2), time, logs, sysctls."""
from __future__ import annotations

from engine.role import Desired, HostContext
from roles.base import firewall, sshd, system


def baseline(ctx: HostContext) -> Desired:
    # Order matters: packages first (nft, sshd, apt-config validate what follows), then sshd
    # and the firewall, then the rest. Every missing package is installed in one apt run.
    packages, *hygiene = system.resources(ctx)
    return Desired(
        resources=(packages, *sshd.resources(ctx), *firewall.resources(ctx), *hygiene),
        handlers=(sshd.HANDLER, firewall.HANDLER, *system.HANDLERS),
    )
