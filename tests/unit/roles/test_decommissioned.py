"""The tombstone `fab decommission` leaves on each host that served a site, and the guard the
web, proxy and ops roles put first for each site (roles/decommissioned.py, issue 16)."""
from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.role import HostContext
from roles import decommissioned
from roles.monitoring.role import ops_monitoring
from roles.proxy.role import proxy
from roles.web import layout


def local(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = argv[-1].replace(layout.TOMBSTONE_DIR, str(tmp_path / "stones"))
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)


def test_write_argv_then_guard_refuses_naming_the_file(tmp_path: Path) -> None:
    guard = decommissioned.guard("participation")
    assert local(list(guard.check), tmp_path).returncode == 0  # never decommissioned here
    wrote = local(decommissioned.write_argv("participation", "2026-12-05T09:00:00Z"), tmp_path)
    assert wrote.returncode == 0, wrote.stderr
    stone = tmp_path / "stones" / "participation.json"
    assert json.loads(stone.read_text()) == {"site": "participation",
                                             "decommissioned_at": "2026-12-05T09:00:00Z"}
    assert not stone.with_suffix(".json.tmp").exists()
    refused = local(list(guard.check), tmp_path)
    assert refused.returncode == 4
    assert "participation was decommissioned here" in refused.stderr
    assert "take it out of the model" in refused.stderr
    # Another site of the same host is not concerned.
    assert local(list(decommissioned.guard("villeparisis").check), tmp_path).returncode == 0


@pytest.mark.parametrize("host, role", [("proxy", proxy), ("ops", ops_monitoring)])
def test_role_guards_every_site_before_anything_else(
        ctx_for: Callable[..., HostContext], host: str,
        role: Callable[[HostContext], object]) -> None:
    ctx = ctx_for(host)
    keys = [r.key for r in role(ctx).resources]  # type: ignore[attr-defined]
    sites = [s.name for s in ctx.inventory.sites]
    assert keys[:len(sites)] == [f"check:not-decommissioned-{s}" for s in sites]
