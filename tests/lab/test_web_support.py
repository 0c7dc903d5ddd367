"""Shared set-up of the web tier's lab tests (no tests here): once per session, `fab deploy`
of the proxy and web hosts (the engine, with the proxy and web roles), then the fixture site
released on both web hosts; and a `curl --resolve` helper trusting the lab's TLS CA."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.testing import LabSession, lab_env  # noqa: F401 (re-exported to the backup tests)

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "site"




@dataclass
class WebTier:
    lab: LabSession
    ca: Path
    deploy_seconds: float
    release_seconds: float
    sites: dict[str, dict[str, Any]] = field(default_factory=dict)

    def site(self, name: str) -> dict[str, Any]:
        return self.sites[name]

    def host_of(self, name: str) -> str:
        return self.sites[name]["host"]

    def curl(self, site: str, path: str = "/", *, ip: str | None = None, scheme: str = "https",
             name: str | None = None, args: tuple[str, ...] = ()) -> tuple[int, str, str]:
        """(status, body, headers) of `curl --resolve NAME:PORT:IP`; status 0 when curl
        failed (no TLS handshake, connection closed...)."""
        s = self.sites[site]
        name = name or s["domain"]
        port = 443 if scheme == "https" else 80
        argv = ["curl", "-sS", "--max-time", "20", "--cacert", str(self.ca), "--resolve",
                f"{name}:{port}:{ip or s['public_ip']}", "-D", "-", "-o", "-",
                *args, f"{scheme}://{name}{path}"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            return 0, proc.stderr, ""
        # text mode turned the headers' CRLF into LF
        head, _, body = proc.stdout.partition("\n\n")
        status = int(head.split()[1])
        return status, body, head.lower()


_TIERS: dict[int, WebTier] = {}


def deploy(lab: LabSession, hosts: list[str]) -> Any:
    """`fab deploy --env lab --hosts ...` against the session's lab (roles from
    roles/registry.py); the engine's report."""
    from tasks import deploy as deploy_task

    with lab_env(lab):
        return deploy_task.run_deploy("lab", hosts=",".join(hosts), emit=lambda _m: None)


def probe_offset(lab: LabSession, n: int = 0) -> int:
    """An address near the end of the lab's public range: a client on the internet."""
    return lab.lab.cfg.public_net.num_addresses - 3 - n


@contextmanager
def connected(lab: LabSession) -> Iterator[tuple[Any, Any]]:
    from tasks.web_tasks import connected as fab_connected

    with lab_env(lab), fab_connected("lab") as (inv, connect):
        yield inv, connect


def release(lab: LabSession, site: str, path: Path = FIXTURE) -> Any:
    from tasks import web_release as rel

    with connected(lab) as (inv, connect):
        return rel.release(inv, connect, site, path, emit=lambda _m: None)


def rollback(lab: LabSession, site: str) -> Any:
    from tasks import web_release as rel

    with connected(lab) as (inv, connect):
        return rel.rollback(inv, connect, site)


def web_tier(lab: LabSession) -> WebTier:
    """Deploy the proxy and web hosts and release the fixture site, once per lab session."""
    if id(lab) in _TIERS and not lab.is_down:
        return _TIERS[id(lab)]
    inv = lab.inventory
    hosts = [h["name"] for h in inv["hosts"] if h["role"] in ("proxy", "web")]
    t0 = time.monotonic()
    report = deploy(lab, hosts)
    if not report.ok:  # the lab's apt proxy sometimes answers 503 from its upstream: once more
        report = deploy(lab, hosts)
    failures = [f"{r.host}: {r.error or [o.error for o in r.outcomes if not o.ok]}"
                for r in report.results if not r.ok]
    assert report.ok, "deploy failed: " + "; ".join(failures)
    t1 = time.monotonic()
    for s in inv["sites"]:
        release(lab, s["name"])
    # Clients trust the CA the inventory names (issue 12), as `fab web.urls` does.
    tier = WebTier(lab, Path(inv["tls"]["source"]["client_ca"]), t1 - t0,
                   time.monotonic() - t1, {s["name"]: s for s in inv["sites"]})
    _TIERS[id(lab)] = tier
    return tier
