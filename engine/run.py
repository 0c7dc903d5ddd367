"""Converge a set of hosts with a role function, in parallel: what `fab deploy`,
`fab ca.push-krl` and `fab ca.sign-hosts` share."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.access import Access
from engine.converge import HostResult, converge
from engine.facts import SystemFacts
from engine.inventory import Host, Inventory
from engine.parallel import run_all
from engine.remote import AgentChannel, Session
from engine.role import Desired, HostContext, Role, Settings


@dataclass
class RunReport:
    results: list[HostResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def converge_hosts(inv: Inventory, access: Access, hosts: Sequence[Host], role: Role,
                   settings: Settings, *, check: bool = False,
                   emit: Callable[[str], None] = print, workers: int = 0) -> RunReport:
    by_name = {h.name: h for h in hosts}

    def work(name: str) -> HostResult:
        host = by_name[name]

        def open_session() -> Session:  # one agent session (one SSH channel) per host
            conn = access.connection(host)
            conn.open()
            return AgentChannel(conn)

        def build(system: SystemFacts) -> Desired:  # called once, with the host's system facts
            return role(HostContext(inv, host, system, settings))

        return converge(name, open_session, build, check=check)

    start = time.monotonic()
    # The bastion goes last: its firewall's first load starts connection tracking in its
    # network namespace, and the tunnels it carries to the other hosts, opened before, are
    # then not "established" for it: their replies would be dropped and those hosts hang.
    bastion = inv.bastion.name
    waves = [[h.name for h in hosts if h.name != bastion], [h.name for h in hosts
                                                             if h.name == bastion]]
    results: dict[str, HostResult] = {}
    try:
        for wave in waves:
            if wave:
                results.update((r.host, r) for r in run_all(wave, work, emit=emit,
                                                            workers=workers))
    finally:
        access.close()
    return RunReport([results[h.name] for h in hosts], time.monotonic() - start)
