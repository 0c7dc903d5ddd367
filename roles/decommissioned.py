"""A decommissioned site stays gone (issue 16, R-GDPR-8): `fab decommission` leaves a tombstone
on each host that served it (the web host, the proxy, ops), and the role of each such host
refuses, as its first resource for that site, to set the site up again while the model still
lists it: a deploy run before the model loses the site would otherwise give it back a vhost
and an address on the proxy and monitoring targets on ops, for a site whose data is gone.
"""
from __future__ import annotations

import json
import shlex

from engine.resources import Check
from roles.web.layout import TOMBSTONE_DIR


def tombstone(site: str) -> str:
    return f"{TOMBSTONE_DIR}/{site}.json"


def guard(site: str) -> Check:
    """Fails (exit 4, never WOULD_CHANGE) while the site's tombstone is on the host, saying
    what to do; the deploy of that host stops there."""
    stone = tombstone(site)
    why = (f"{site} was decommissioned here ({stone}): take it out of the model, not "
           "deploy it again empty; to set it up here again on purpose, delete that file")
    return Check(f"not-decommissioned-{site}",
                 ("sh", "-c", f"test ! -e {stone} || {{ echo {shlex.quote(why)} >&2; exit 4; }}"),
                 ("false",), summary=f"refuse to set {site} up again")


def write_argv(site: str, when: str) -> list[str]:
    """Root's command that leaves the tombstone (atomically: written aside, then renamed)."""
    stone = tombstone(site)
    body = json.dumps({"site": site, "decommissioned_at": when})
    return ["sh", "-c", f"install -d -m 0755 {TOMBSTONE_DIR} && "
                        f"printf '%s\\n' {shlex.quote(body)} > {stone}.tmp && "
                        f"mv {stone}.tmp {stone}"]
