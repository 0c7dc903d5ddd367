"""`fab web.*`: code releases of the sites (docs/web-tier.md). `fab deploy` configures the
web hosts; these ship code, separately, so a configuration fix never ships new code."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from engine.access import Access, AccessError, credentials
from engine.inventory import Inventory, InventoryError, load
from tasks import web_release as rel

ENV_HELP = "lab | prod | preprod (default lab)"
SITE_HELP = "site name (default: every site, one after the other)"


@contextmanager
def connected(env: str, inventory: str = "", identity: str = ""
              ) -> Iterator[tuple[Inventory, Callable[[str], Any]]]:
    inv = load(env, inventory or None)
    access = Access(inv, credentials(env, identity, inv=inv))
    try:
        yield inv, lambda host: access.connection(inv.host(host))
    finally:
        access.close()


def _sites(inv: Inventory, site: str) -> list[str]:
    names = [s.name for s in inv.sites]
    if site and site not in names:
        raise Exit(f"web: no site {site!r}; sites: {', '.join(names)}", code=2)
    return [site] if site else names


def _guard(fn: Callable[[], None]) -> None:
    try:
        fn()
    except (InventoryError, AccessError, rel.ReleaseError) as exc:
        raise Exit(f"web: {exc}", code=1) from exc


@task(help={"env": ENV_HELP, "site": SITE_HELP,
            "path": "deploy this local directory instead of the model's codebase (lab, dev)",
            "inventory": "inventory JSON file", "identity": "your key (with KEY-cert.pub)"})
def release(c, env="lab", site="", path="", inventory="", identity=""):
    """Deploy the sites' code: new release dir, checks, atomic switch (no-op if unchanged)."""
    def go() -> None:
        with connected(env, inventory, identity) as (inv, connect):
            for name in _sites(inv, site):
                print(rel.release(inv, connect, name, path or None).line())
    _guard(go)


@task(help={"env": ENV_HELP, "site": "site name", "inventory": "inventory JSON file",
            "identity": "your key (with KEY-cert.pub)"})
def rollback(c, env="lab", site="", inventory="", identity=""):
    """Switch a site back to the release that was live before the current one."""
    if not site:
        raise Exit("web.rollback: --site is required (one site at a time)", code=2)

    def go() -> None:
        with connected(env, inventory, identity) as (inv, connect):
            print(rel.rollback(inv, connect, _sites(inv, site)[0]).line())
    _guard(go)


@task(help={"env": ENV_HELP, "site": SITE_HELP, "inventory": "inventory JSON file",
            "identity": "your key (with KEY-cert.pub)"})
def status(c, env="lab", site="", inventory="", identity=""):
    """Show each site's live release, kept releases and rollback target (JSON)."""
    def go() -> None:
        with connected(env, inventory, identity) as (inv, connect):
            for name in _sites(inv, site):
                print(json.dumps({name: rel.status(inv, connect, name)}, indent=2))
    _guard(go)


@task(help={"env": ENV_HELP, "inventory": "inventory JSON file"})
def urls(c, env="lab", inventory=""):
    """Print a `curl --resolve` line per site name (trusting the inventory's private TLS CA,
    the lab's, when it names one: tls.source.client_ca)."""
    try:
        inv = load(env, inventory or None)
    except InventoryError as exc:
        raise Exit(f"web.urls: {exc}", code=2) from exc
    ca = f" --cacert {inv.tls_client_ca}" if inv.tls_client_ca is not None else ""
    for s in inv.sites:
        for name in s.names:
            print(f"curl{ca} --resolve {name}:443:{s.public_ip} https://{name}/")
