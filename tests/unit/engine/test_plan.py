"""A whole host's plan: ordering, one apt run, handlers once and only on change."""
from __future__ import annotations

import hashlib

import pytest

from engine.decide import decide
from engine.facts import HostFacts, PathFact, UnitFact
from engine.resources import File, Handler, Packages, Service

RELOAD = Handler("reload-sshd", ("systemctl", "reload", "ssh.service"))
NFT = Handler("reload-nftables", ("nft", "-f", "/etc/nftables.conf"))


def f(data: str, mode: int = 0o644) -> PathFact:
    raw = data.encode()
    return PathFact(True, "file", mode, "root", "root", hashlib.sha256(raw).hexdigest(), raw)


RESOURCES = (
    Packages(("openssh-server", "nftables")),
    File("/etc/ssh/sshd_config", "new\n", 0o600, notify=("reload-sshd",)),
    File("/etc/ssh/user_ca.pub", "ca\n", notify=("reload-sshd",)),
    File("/etc/nftables.conf", "rules\n", notify=("reload-nftables",)),
    Packages(("sudo",)),
    Service("ssh.service"),
)
CONVERGED = HostFacts(
    paths={"/etc/ssh/sshd_config": f("new\n", 0o600), "/etc/ssh/user_ca.pub": f("ca\n"),
           "/etc/nftables.conf": f("rules\n")},
    packages={"openssh-server": "1", "nftables": "1", "sudo": "1"},
    units={"ssh.service": UnitFact("loaded", "enabled", "active")})


def test_decide_converged_host_nothing_to_do_and_no_handler() -> None:
    plan = decide(RESOURCES, (RELOAD, NFT), CONVERGED)
    assert plan.is_noop and plan.actions == () and plan.handlers == ()
    assert plan.changed == () and len(plan.unchanged) == len(RESOURCES)


def test_decide_two_changed_files_notify_their_handler_once() -> None:
    facts = HostFacts(paths={**CONVERGED.paths, "/etc/ssh/sshd_config": f("old\n", 0o600),
                             "/etc/ssh/user_ca.pub": f("old ca\n")},
                      packages=CONVERGED.packages, units=CONVERGED.units)
    plan = decide(RESOURCES, (RELOAD, NFT), facts)
    assert [a.key for a in plan.actions] == ["file:/etc/ssh/sshd_config",
                                             "file:/etc/ssh/user_ca.pub"]
    assert [(h.name, h.after) for h in plan.handlers] == [("reload-sshd", (0, 1))]
    assert plan.handlers[0].op["argv"] == ["systemctl", "reload", "ssh.service"]


def test_decide_unchanged_dependency_handler_does_not_run() -> None:
    facts = HostFacts(paths={**CONVERGED.paths, "/etc/nftables.conf": f("old\n")},
                      packages=CONVERGED.packages, units=CONVERGED.units)
    plan = decide(RESOURCES, (RELOAD, NFT), facts)
    assert [h.name for h in plan.handlers] == ["reload-nftables"]


def test_decide_missing_packages_of_all_resources_installed_in_one_run_first() -> None:
    facts = HostFacts(paths=CONVERGED.paths, units=CONVERGED.units,
                      packages={"openssh-server": "1", "nftables": None, "sudo": None})
    plan = decide(RESOURCES, (RELOAD, NFT), facts)
    installs = [a for a in plan.actions if a.op["kind"] == "apt"]
    assert len(installs) == 1 and plan.actions[0] is installs[0]
    assert installs[0].summary == "install nftables sudo"
    assert set(plan.changed) == {"packages:+openssh-server,nftables", "packages:+sudo"}


def test_decide_resource_declared_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        decide((File("/a", "1"), File("/a", "2")), (), HostFacts())


def test_decide_notify_of_an_unknown_handler_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown handler"):
        decide((File("/a", "1", notify=("nope",)),), (), HostFacts())


def test_decide_fresh_host_orders_actions_as_the_roles_declared_them() -> None:
    plan = decide(RESOURCES, (RELOAD, NFT), HostFacts())
    assert [a.key for a in plan.actions] == [
        "packages", "file:/etc/ssh/sshd_config", "file:/etc/ssh/user_ca.pub",
        "file:/etc/nftables.conf", "service:ssh.service"]
    assert [h.name for h in plan.handlers] == ["reload-sshd", "reload-nftables"]
