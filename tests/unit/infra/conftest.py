"""Fixtures for the Pulumi program's unit tests: each stack built once under Pulumi's mocks.

Builds run in-process one after another (infra/mockrun.py resets the runtime between them);
session scope keeps the whole suite to a few builds.
"""
from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import warnings  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

with warnings.catch_warnings():  # the provider SDKs warn about their own deprecated aliases
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_openstack  # noqa: F401, E402
    import pulumi_ovh  # noqa: F401, E402

from infra.mockrun import MockBuild, build_under_mocks  # noqa: E402
from model import Stack, load_stack, parse_stack  # noqa: E402

ENVS = ("prod", "preprod")


def stack_of(env: str) -> Stack:
    return load_stack(REPO / f"Pulumi.{env}.yaml")


def prod_with(change: Callable[[dict[str, Any]], None]) -> Stack:
    """The prod stack after `change(config)` edited a copy of its YAML (same parser, same file
    name so the environment check holds)."""
    doc = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    config = copy.deepcopy(doc)
    change(config["config"])
    return parse_stack(yaml.safe_dump(config, sort_keys=False), "Pulumi.prod.yaml")


def add_third_site(config: dict[str, Any]) -> None:
    """A third site with its own /32 Additional IP (a new block) and one alias."""
    config["hosting:network"]["public_ip_blocks"].append("198.51.100.40/32")
    site = copy.deepcopy(config["hosting:sites"][1])
    site.update(name="culture", domain="culture.villeparisis.fr",
                aliases=["www.culture.villeparisis.fr"], public_ip="198.51.100.40",
                database={"name": "culture"}, backup={"time": "04:15"}, host_number=102)
    config["hosting:sites"].append(site)


@pytest.fixture(scope="session")
def builds() -> dict[str, tuple[Stack, MockBuild]]:
    out = {}
    for env in ENVS:
        stack = stack_of(env)
        out[env] = (stack, build_under_mocks(stack))
    return out


@pytest.fixture(scope="session", params=ENVS)
def built(request: pytest.FixtureRequest, builds: dict[str, tuple[Stack, MockBuild]]
          ) -> tuple[Stack, MockBuild]:
    """Each real stack (prod, preprod) and what its build registered."""
    return builds[request.param]


@pytest.fixture(scope="session")
def three_sites() -> tuple[Stack, MockBuild]:
    stack = prod_with(add_third_site)
    return stack, build_under_mocks(stack)
