"""The admin side of `fab web.release` (tasks/web_release.py) when the host's release fails:
the host's record is read back, and a failed way back also puts the proxy's maintenance page
on (issue 11, section 2; R-INC-1). Fake connections: plain objects, no SSH."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.inventory import Inventory
from tasks import web_release as rel


@dataclass
class Result:
    exited: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class FakeConn:
    host: str
    helper: Result
    ran: list[str] = field(default_factory=list)

    def run(self, cmd: str, **_kw: Any) -> Result:
        self.ran.append(cmd)
        if cmd.startswith("mktemp"):
            return Result(stdout="/tmp/hosting-release.x\n")
        if "hosting" in cmd and " release " in cmd:
            return self.helper
        return Result()

    def open(self) -> None:
        pass

    @property
    def client(self) -> FakeConn:
        return self

    def open_sftp(self) -> FakeSftp:
        return FakeSftp(self)


@dataclass
class FakeSftp:
    conn: FakeConn

    def __enter__(self) -> FakeSftp:
        return self

    def __exit__(self, *_a: Any) -> None:
        self.conn.ran.append("sftp closed")

    def put(self, local: str, remote: str) -> None:
        self.conn.ran.append(f"sftp put {remote}")


def _release(inv: Inventory, tmp_path: Path, record: dict[str, Any]):
    site = inv.sites[0].name
    conns: dict[str, FakeConn] = {}
    helper = Result(1, json.dumps(record) + "\n", "hosting-web release: release X failed")

    def connect(host: str) -> FakeConn:
        return conns.setdefault(host, FakeConn(host, helper))
    tree = tmp_path / "code"
    (tree / "web").mkdir(parents=True)
    (tree / "web" / "index.php").write_text("<?php\n")
    with pytest.raises(rel.ReleaseError) as err:
        rel.release(inv, connect, site, tree, emit=lambda _m: None)
    proxy = next(h.name for h in inv.hosts if h.role == "proxy")
    return err.value, conns.get(proxy), site


def test_release_failed_rollback_sets_proxy_maintenance_flag(prod, tmp_path):
    err, proxy, site = _release(prod, tmp_path, {"result": "rollback failed",
                                                  "maintenance": True})
    assert err.record["result"] == "rollback failed"
    assert proxy is not None and any(f"/var/lib/hosting/maintenance/{site}" in c
                                     for c in proxy.ran)
    assert f"proxy maintenance page ON for {site}" in str(err)


def test_release_rolled_back_leaves_proxy_alone(prod, tmp_path):
    err, proxy, _site = _release(prod, tmp_path, {"result": "rolled back",
                                                   "maintenance": False})
    assert err.record["result"] == "rolled back"
    assert proxy is None and "maintenance" not in str(err)


def test_helper_argv_passes_the_sites_database(prod):
    from roles.web.site import web_site

    site = web_site(prod, prod.sites[0].name)
    argv = rel.helper_argv("release", site)
    assert argv[argv.index("--database") + 1] == site.database



def test_release_upload_closes_its_sftp_session_before_the_helper_runs(prod, tmp_path):
    # sshd allows 2 sessions per connection (MaxSessions 2): the SFTP session must be gone
    # before the release command and the clean-up open theirs.
    site = prod.sites[0]
    conns: dict[str, FakeConn] = {}
    helper = Result(1, json.dumps({"result": "rolled back"}) + "\n", "failed")
    tree = tmp_path / "code"
    (tree / "web").mkdir(parents=True)
    (tree / "web" / "index.php").write_text("<?php\n")
    with pytest.raises(rel.ReleaseError):
        rel.release(prod, lambda h: conns.setdefault(h, FakeConn(h, helper)), site.name, tree,
                    emit=lambda _m: None)
    ran = conns[site.host].ran
    put = next(i for i, c in enumerate(ran) if c.startswith("sftp put /tmp/hosting-release.x/"))
    assert ran[put + 1] == "sftp closed"
    assert " release " in ran[put + 2] and ran[-1].startswith("rm -rf /tmp/hosting-release.x")
