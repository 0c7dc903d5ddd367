"""The primitives and the agent's ops pair up (engine/primitives/__init__.py, onhost/agent.py):
every op a primitive names exists in the agent, every agent op belongs to a primitive, and every
resource type has its module."""
from __future__ import annotations

import pytest

from engine.facts import FactRequest
from engine.primitives import BY_TYPE, MODULES, decide_one, module_for, request_for
from engine.resources import Absent, Check, Directory, File, Packages, Probe, Service, Sysctl, User
from onhost import agent


def test_modules_every_op_named_exists_in_the_agent() -> None:
    for m in MODULES:
        assert m.OPS and set(m.OPS) <= set(agent.OPS), m.__name__


def test_agent_ops_every_entry_belongs_to_a_primitive() -> None:
    named = {op for m in MODULES for op in m.OPS}
    assert set(agent.OPS) == named


def test_modules_each_has_resource_request_and_decide() -> None:
    for m in MODULES:
        assert callable(m.request) and callable(m.decide) and BY_TYPE[m.RESOURCE] is m


def test_resources_every_exported_type_has_its_module() -> None:
    for t in (File, Absent, Directory, Packages, Service, Sysctl, User, Probe, Check):
        assert t in BY_TYPE


def test_module_for_unknown_resource_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unknown resource"):
        module_for(object())
    with pytest.raises(TypeError, match="unknown resource"):
        decide_one(object(), None)  # type: ignore[arg-type]


def test_request_for_sensitive_file_content_never_asked_even_in_check_mode() -> None:
    key = File("/etc/ssl/k.key", "secret", sensitive=True)
    req = request_for([key, Absent("/etc/a"), File("/etc/b", "x")], check=True)
    assert req.paths == ("/etc/ssl/k.key", "/etc/a", "/etc/b")
    assert req.contents == ("/etc/a", "/etc/b")


def test_request_for_apply_mode_fetches_only_probe_records() -> None:
    req = request_for([File("/etc/b", "x"), Probe("p", ("true",), "/var/lib/rec")])
    assert req.contents == ("/var/lib/rec",) and req.commands == (("p", ("true",)),)


def test_request_for_every_primitive_says_its_part() -> None:
    req = request_for([Packages(("nginx", "curl")), Service("nginx.service"),
                       Sysctl("net.ipv4.ip_forward", "0"), User("site", "/home/site"),
                       Directory("/srv"), Check("c", ("chk",), ("fix",))])
    assert req == FactRequest(paths=("/srv",), packages=("nginx", "curl"),
                              units=("nginx.service",), sysctls=("net.ipv4.ip_forward",),
                              users=("site",), commands=(("c", ("chk",)),))


def test_request_for_two_commands_under_one_name_is_refused() -> None:
    with pytest.raises(ValueError, match="two commands named 'x'"):
        request_for([Check("x", ("a",), ("b",)), Probe("x", ("c",), "/rec")])
