"""The Packages primitive's decision and a host's merged install (engine/primitives/packages.py)."""
from __future__ import annotations

from engine.primitives.common import Action, Note
from engine.primitives.packages import Packages, decide_packages, merged_install


def script(action: Action | Note) -> str:
    assert isinstance(action, Action) and action.op["kind"] == "apt"
    return str(action.op["script"])


def test_decide_packages_all_installed_does_nothing() -> None:
    assert decide_packages(Packages(("nftables", "sudo")), {"nftables": "1.1", "sudo": "1.9"}) == []


def test_decide_packages_missing_ones_installed_through_timeout_without_prompts() -> None:
    [action] = decide_packages(Packages(("nftables", "sudo", "needrestart")),
                               {"nftables": "1.1", "sudo": None})
    assert action.summary == "install sudo needrestart"
    text = script(action)
    assert "timeout 300 apt-get update" in text
    assert "timeout 900 apt-get install -y -q --no-install-recommends" in text
    assert text.endswith(" -- sudo needrestart")
    assert action.op["names"] == ["sudo", "needrestart"] and action.op["install"] is True
    assert action.op["env"]["DEBIAN_FRONTEND"] == "noninteractive"


def test_decide_packages_absent_purges_only_installed_ones() -> None:
    [action] = decide_packages(Packages(("telnet", "rsh-client"), present=False),
                               {"telnet": "0.17", "rsh-client": None})
    assert action.summary == "purge telnet"
    assert script(action).endswith("apt-get purge -y -q -- telnet")
    assert action.op["install"] is False and action.op["leftovers"] == []
    assert decide_packages(Packages(("telnet",), present=False), {"telnet": None}) == []


def test_merged_install_missing_packages_carries_their_leftovers_only() -> None:
    nginx = Packages(("nginx",), leftovers=("/etc/nginx/sites-enabled/default",))
    pool = Packages(("php8.4-fpm",), leftovers=("/etc/php/8.4/fpm/pool.d/www.conf",))
    action = merged_install([nginx, pool, Packages(("curl", "nginx"))],
                            {"nginx": None, "php8.4-fpm": "8.4.1", "curl": None})
    assert action is not None and action.key == "packages"
    assert action.op["names"] == ["nginx", "curl"]
    assert action.op["leftovers"] == ["/etc/nginx/sites-enabled/default"]
    assert action.summary == "install nginx curl, then remove /etc/nginx/sites-enabled/default"


def test_merged_install_nothing_missing_is_none() -> None:
    assert merged_install([Packages(("nginx",), leftovers=("/x",))], {"nginx": "1.26"}) is None
