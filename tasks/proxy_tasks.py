"""`fab proxy.maintenance`: put a site in (or out of) maintenance mode at the proxy: every
request gets the maintenance page (503, Retry-After) until it is lifted (R-MNT-1). A flag
file, read by nginx per request: no reload, takes effect at once."""
from __future__ import annotations

import shlex

from invoke import task
from invoke.exceptions import Exit

from engine.access import AccessError
from engine.inventory import InventoryError
from roles.proxy.config import proxy_config
from tasks.web_tasks import connected


def set_maintenance(conn, flag: str, on: bool) -> None:  # type: ignore[no-untyped-def]
    cmd = f"touch {shlex.quote(flag)}" if on else f"rm -f {shlex.quote(flag)}"
    conn.run(f"sudo -n sh -c {shlex.quote(cmd)}", hide=True, in_stream=False)


@task(help={"env": "lab | prod | preprod (default lab)", "site": "site name",
            "on": "turn maintenance mode on", "off": "turn it off",
            "inventory": "inventory JSON file", "identity": "your key (with KEY-cert.pub)"})
def maintenance(c, env="lab", site="", on=False, off=False, inventory="", identity=""):
    """Serve a site's maintenance page (503) from the proxy, or stop serving it."""
    if on == off:
        raise Exit("proxy.maintenance: say --on or --off", code=2)
    try:
        with connected(env, inventory, identity) as (inv, connect):
            cfg = proxy_config(inv)
            match = [s for s in cfg.sites if s.name == site]
            if not match:
                raise Exit(f"proxy.maintenance: no site {site!r}", code=2)
            proxy = next(h.name for h in inv.hosts if h.role == "proxy")
            set_maintenance(connect(proxy), match[0].maintenance_flag, on)
            print(f"{site}: maintenance {'on' if on else 'off'}")
    except (InventoryError, AccessError) as exc:
        raise Exit(f"proxy.maintenance: {exc}", code=1) from exc
