"""Which roles converge a host, by its inventory role. Every host gets the baseline; the web
tier, the proxy, monitoring and storage roles add theirs here as they are written."""
from __future__ import annotations

from roles.base import baseline
from roles.core.role import Desired, HostContext, Role
from roles.proxy.role import proxy
from roles.web.role import web

ROLES: dict[str, tuple[Role, ...]] = {
    "proxy": (baseline, proxy),
    "web": (baseline, web),
    "ops": (baseline,),
    "storage": (baseline,),
}


def desired(ctx: HostContext) -> Desired:
    total = Desired()
    for role in ROLES[ctx.host.role]:
        total = total + role(ctx)
    return total
