"""What a role is: a pure function from a host's context to its desired state.

    def baseline(ctx: HostContext) -> Desired

`HostContext` holds the inventory, the host, the system facts (container or not, OpenSSH's
algorithms) and deploy settings; `Desired` is the resources and handlers. Roles compose with +.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.facts import SystemFacts
from engine.inventory import Host, Inventory
from engine.resources import Handler, Resource

if TYPE_CHECKING:
    from engine.tls_ca import InternalTls


@dataclass(frozen=True)
class Settings:
    """Deploy-time inputs that are not in the inventory.

    `user_krl`: the user CA's KRL from the CA directory, when this machine holds it; without
    it the hosts' KRL is only created if missing, never rolled back to an older copy.
    """

    user_krl: bytes | None = None
    host_krl: bytes | None = None  # the host CA's KRL, for the hosts' own SSH clients
    ntp_servers: tuple[str, ...] = ("ntp.ovh.net",)
    # The proxy -> web hop's CA certificate and leaves (engine.tls_ca.ensure); None: this
    # machine holds no internal CA, and the roles leave the hosts' internal TLS files alone.
    internal_tls: InternalTls | None = None


@dataclass(frozen=True)
class HostContext:
    inventory: Inventory
    host: Host
    system: SystemFacts = field(default_factory=SystemFacts)
    settings: Settings = field(default_factory=Settings)


@dataclass(frozen=True)
class Desired:
    resources: tuple[Resource, ...] = ()
    handlers: tuple[Handler, ...] = ()

    def __add__(self, other: Desired) -> Desired:
        mine = {h.name: h for h in self.handlers}
        for h in other.handlers:
            if h.name in mine and mine[h.name] != h:
                raise ValueError(f"handler {h.name!r} defined twice, differently")
        handlers = self.handlers + tuple(h for h in other.handlers if h.name not in mine)
        return Desired(self.resources + other.resources, handlers)


Role = Callable[[HostContext], Desired]
