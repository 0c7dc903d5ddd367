"""`fab decommission`'s refusals (issue 16, R-GDPR-8): nothing is changed, nothing connects
for a destructive step, when the domain typed back is wrong, when there is no terminal and no
--yes, or when a host involved does not answer (each named). The hosts are stand-ins that
record every command: only the preflight's harmless ones may reach them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import ca_admin
from tasks import decommission_run as run
from tasks.decommission_run import DecommissionError, Options, run_decommission
from tests.unit.conftest import make_inventory


class Conn:
    def __init__(self, host: str, log: list[tuple[str, str]], down: set[str]) -> None:
        self.host, self.log, self.down = host, log, down

    def run(self, command: str, **_kw: Any) -> Any:
        if self.host in self.down:
            raise OSError("connection timed out")
        self.log.append((self.host, command))
        return type("R", (), {"exited": 0, "stdout": "", "stderr": ""})()


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    inv = make_inventory("prod")
    ca_dir = tmp_path / "ca"
    ca_admin.create(ca_dir, "prod")
    state: dict[str, Any] = {"log": [], "down": set()}

    class FakeAccess:
        def __init__(self, *_a: Any, **_k: Any) -> None:
            pass

        def connection(self, host: Any) -> Conn:
            return Conn(host.name, state["log"], state["down"])

        def close(self) -> None:
            pass

    creds = type("C", (), {"ca_dir": ca_dir})()
    monkeypatch.setattr(run, "load", lambda env, path=None: inv)
    monkeypatch.setattr(run, "credentials", lambda *a, **k: creds)
    monkeypatch.setattr(run, "Access", FakeAccess)
    monkeypatch.setattr(run, "stages", lambda *a, **k: state.setdefault("staged", True))
    # the Pulumi plan has its own tests (test_decommission_plan): seconds saved here
    import tasks.decommission_report as report_mod
    monkeypatch.setattr(report_mod, "pulumi_section",
                        lambda env, site, path: {"error": f"plan of {site} left out"})
    return state


def test_run_decommission_wrong_domain_typed_nothing_changed(hosts: dict[str, Any],
                                                             tmp_path: Path) -> None:
    out = tmp_path / "report"
    with pytest.raises(DecommissionError, match="not confirmed"):
        run_decommission(Options("prod", "participation", out=str(out)),
                         confirm=lambda _p: "villeparisis.fr", emit=lambda _m: None)
    assert "staged" not in hosts and not out.exists()
    assert all(cmd in ("sudo -n true", "sudo -n test -d /srv/participation")
               for _h, cmd in hosts["log"]), hosts["log"]


def test_run_decommission_no_terminal_without_yes_not_confirmed(hosts: dict[str, Any],
                                                                tmp_path: Path) -> None:
    def no_tty(_prompt: str) -> str:
        raise EOFError

    with pytest.raises(DecommissionError, match="--yes in CI"):
        run_decommission(Options("prod", "participation", out=str(tmp_path / "r")),
                         confirm=no_tty, emit=lambda _m: None)
    assert "staged" not in hosts


def test_run_decommission_host_down_named_nothing_changed(hosts: dict[str, Any],
                                                          tmp_path: Path) -> None:
    hosts["down"].add("backup-b")
    with pytest.raises(DecommissionError, match="backup-b: OSError: connection timed out"):
        run_decommission(Options("prod", "participation", yes=True, out=str(tmp_path / "r")),
                         emit=lambda _m: None)
    assert "staged" not in hosts


def test_run_decommission_domain_typed_back_runs_the_stages(hosts: dict[str, Any],
                                                            tmp_path: Path) -> None:
    report = run_decommission(Options("prod", "participation", out=str(tmp_path / "r")),
                              confirm=lambda _p: "participation.villeparisis.fr",
                              emit=lambda _m: None)
    assert hosts["staged"] and (tmp_path / "r" / "decommission.md").exists()
    assert set(report.backups) == {"a", "b"}
    assert report.pulumi == {"error": "plan of participation left out"}


def stand_in_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> Path:
    """A `pulumi` first on PATH that records its arguments (one line per call)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "pulumi.log"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n'
                      f'[ {code} = 0 ] || echo "error: no stack named prod" >&2\nexit {code}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    return log


def protected_report() -> run.Report:
    r = run.Report("prod", "participation", "participation.villeparisis.fr", "scheduled")
    urn = "urn:pulumi:prod::hosting::pulumi:pulumi:Stack$openstack:compute/instance:Instance::vm"
    r.pulumi = {"removals": [{"type": "openstack:compute/instance:Instance", "name": "vm",
                              "urn": urn, "protect": True},
                             {"type": "ovh:Domain/zoneRecord:ZoneRecord", "name": "dns",
                              "urn": urn + "-dns", "protect": False}]}
    return r


def test_unprotect_protected_resources_only_urn_passed_whole(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    log = stand_in_pulumi(tmp_path, monkeypatch, 0)
    r = protected_report()
    run.unprotect("prod", r)
    assert log.read_text().splitlines() == [
        "state unprotect --stack prod --yes "
        "urn:pulumi:prod::hosting::pulumi:pulumi:Stack$openstack:compute/instance:Instance::vm"]
    assert r.stages[-1]["ok"] and "1 resource(s) unprotected" in r.stages[-1]["detail"]


def test_unprotect_pulumi_fails_error_reported(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in_pulumi(tmp_path, monkeypatch, 255)
    r = protected_report()
    run.unprotect("prod", r)
    assert not r.ok and "no stack named prod" in r.stages[-1]["detail"]


@pytest.mark.parametrize("exited, ok", [(0, True), (1, False)])
def test_leave_tombstone_written_by_root_stage_recorded(
        monkeypatch: pytest.MonkeyPatch, exited: int, ok: bool) -> None:
    inv = make_inventory("prod")
    ran: list[str] = []

    class Result:
        stdout, stderr = "", "sh: cannot create: Read-only file system"

    class FakeAccess:
        def __init__(self, *_a: Any, **_k: Any) -> None:
            pass

        def connection(self, host: Any) -> Any:
            class C:
                def run(self, command: str, **_kw: Any) -> Any:
                    ran.append(f"{host.name}: {command}")
                    r = Result()
                    r.exited = exited  # type: ignore[attr-defined]
                    return r
            return C()

        def close(self) -> None:
            pass

    monkeypatch.setattr(run, "Access", FakeAccess)
    report = run.Report("prod", "participation", "participation.villeparisis.fr", "scheduled")
    assert run.leave_tombstone(inv, None, inv.proxy, "participation", report) is ok
    assert len(ran) == 1 and ran[0].startswith("proxy: sudo -n sh -c ")
    assert "/var/lib/hosting/decommissioned/participation.json" in ran[0]
    stage = report.stages[-1]
    assert (stage["stage"], stage["where"], stage["ok"]) == ("tombstone", "proxy", ok)
    assert ("Read-only file system" in stage["detail"]) is not ok
