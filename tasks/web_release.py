"""Code releases of a site (`fab web.release`, `fab web.rollback`, `fab web.status`), driven
from the admin's machine: build the archive here (tasks.web_codebase), upload it to the
site's web host over the verified SSH connection, and let the host's helper stage, check,
switch and health-check it (onhost/web/hw_release.py). One SSH round trip for the
deployment itself; a failure anywhere leaves the live release serving.
"""
from __future__ import annotations

import json
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.channel import upload as upload_file
from engine.inventory import Inventory
from roles.web.layout import PHP_VERSION
from roles.web.role import HELPER
from roles.web.site import WebSite, web_site
from tasks import web_codebase as codebase
from tasks.incident_record import ByName, record_incident, release_record


class ReleaseError(RuntimeError):
    def __init__(self, message: str, record: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.record = record or {}  # the host's release record, when it wrote one


@dataclass
class ReleaseReport:
    site: str
    action: str
    release: str
    previous: str | None
    source: str = ""
    seconds: float = 0.0
    build_seconds: float = 0.0
    host: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        what = {"none": "already live", "stage": "new release live", "switch":
                "switched to kept release", "rollback": "rolled back"}.get(self.action,
                                                                           self.action)
        return (f"{self.site}: {what}: {self.release} (was {self.previous or 'nothing'}) "
                f"in {self.seconds:.1f}s{f' [{self.source}]' if self.source else ''}")


def helper_argv(command: str, site: WebSite) -> list[str]:
    lay = site.layout
    return [*HELPER, command, "--site", site.name, "--root", lay.root,
            "--owner", lay.code_owner, "--group", lay.group,
            "--settings-local", lay.settings_local,
            "--default-settings", f"{lay.etc}/settings.default.php",
            "--health-url", "http://127.0.0.1/", "--health-host", site.domain,
            "--php", f"/usr/bin/php{PHP_VERSION}", "--database", site.database]


def _sudo(conn: Any, argv: list[str], timeout: int = 600) -> dict[str, Any]:
    # in_stream=False: never forward our stdin (under pytest or CI it is not a terminal).
    res = conn.run("sudo -n " + shlex.join(argv), hide=True, warn=True, timeout=timeout,
                   in_stream=False)
    if res.exited != 0:
        record: dict[str, Any] = {}
        try:  # a failed release prints its record on stdout, the error on stderr
            record = json.loads(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            pass
        raise ReleaseError((res.stderr or res.stdout).strip()[-2000:]
                           or f"helper exited {res.exited}", record)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise ReleaseError(f"helper answered no JSON: {res.stdout[-500:]!r}") from exc


def build(site: WebSite, out_dir: Path, path: str | Path | None = None,
          field: str = "codebase") -> codebase.Built:
    """The model's codebase, or a local directory (lab, development)."""
    if path:
        return codebase.build_directory(Path(path), out_dir)
    return codebase.build(site.codebase, out_dir, field)


def release(inv: Inventory, connect: Callable[[str], Any], site_name: str,
            path: str | Path | None = None,
            emit: Callable[[str], None] = print,
            built: codebase.Built | None = None) -> ReleaseReport:
    """Build (or take `built`: `fab update` ships one artifact to preprod, then to prod),
    upload, and let the host release it."""
    site = web_site(inv, site_name)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hosting-release-") as tmp:
        if built is None:
            try:
                index = inv.sites.index(inv.site(site_name))
                built = build(site, Path(tmp), path, f"sites[{index}].codebase")
            except codebase.CodebaseError as exc:
                raise ReleaseError(f"{site_name}: cannot build the codebase: {exc}") from exc
        build_s = time.monotonic() - start
        emit(f"{site_name}: built {built.sha256[:12]} from {built.source} ({build_s:.1f}s)")
        conn = connect(site.host)
        updir = conn.run("mktemp -d /tmp/hosting-release.XXXXXXXX", hide=True,
                         in_stream=False).stdout.strip()
        upload = f"{updir}/{built.sha256}.tar.gz"
        try:
            upload_file(conn, str(built.archive), upload)
            host = _sudo(conn, [*helper_argv("release", site), "--upload", upload,
                                "--sha256", built.sha256, "--source", built.source])
        except ReleaseError as exc:
            if exc.record.get("maintenance") or exc.record.get("result") == "rollback failed":
                exc.args = (exc.args[0] + "; " + proxy_maintenance(inv, connect, site_name),)
            # R-INC-4: the failed release in ops's incident record (reported, never fatal).
            record_incident(inv, ByName(connect), release_record(
                site_name, site.host, "release", str(exc), exc.record), emit)
            raise
        finally:
            conn.run(f"rm -rf {shlex.quote(updir)}", hide=True, warn=True, in_stream=False)
    return ReleaseReport(site_name, host["action"], host["release"], host.get("previous"),
                         built.source, time.monotonic() - start, build_s, host)


def proxy_maintenance(inv: Inventory, connect: Callable[[str], Any], site_name: str) -> str:
    """The way back failed on the web host: keep visitors on the proxy's maintenance page
    (503) as well, whatever the site answers, until an admin lifts it (R-INC-1)."""
    from roles.proxy.config import proxy_config

    try:
        flag = next(s.maintenance_flag for s in proxy_config(inv).sites
                    if s.name == site_name)
        proxy = inv.proxy.name
        connect(proxy).run(f"sudo -n touch {shlex.quote(flag)}", hide=True, in_stream=False)
    except Exception as exc:  # noqa: BLE001 -- reported with the release's own error
        return f"AND the proxy's maintenance flag could not be set: {exc}"
    return (f"proxy maintenance page ON for {site_name} (lift it with "
            f"`fab proxy.maintenance --site {site_name} --off` once the site is repaired)")


def rollback(inv: Inventory, connect: Callable[[str], Any], site_name: str) -> ReleaseReport:
    site = web_site(inv, site_name)
    start = time.monotonic()
    host = _sudo(connect(site.host), helper_argv("rollback", site))
    return ReleaseReport(site_name, "rollback", host["release"], host.get("previous"),
                         seconds=time.monotonic() - start, host=host)


def status(inv: Inventory, connect: Callable[[str], Any], site_name: str) -> dict[str, Any]:
    site = web_site(inv, site_name)
    return _sudo(connect(site.host), helper_argv("status", site))
