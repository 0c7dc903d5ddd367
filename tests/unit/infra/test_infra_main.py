"""infra/__main__.py: what Pulumi runs loads `Pulumi.<stack>.yaml` for the current stack."""
from __future__ import annotations

import runpy
from collections import Counter

import pytest

from infra.mockrun import build_under_mocks
from model import ConfigErrors

from .conftest import REPO, stack_of

MAIN = str(REPO / "infra" / "__main__.py")


def test_main_builds_the_stack_pulumi_names(builds):
    stack, direct = builds["preprod"]
    via_main = build_under_mocks(stack, build=lambda _: runpy.run_path(MAIN))
    assert Counter((r.type, r.name) for r in via_main.resources) == Counter(
        (r.type, r.name) for r in direct.resources)
    assert via_main.outputs["inventory"]["environment"] == "preprod"


def test_main_unknown_stack_name_stops_with_config_error():
    stack = stack_of("prod")
    renamed = stack.__class__(**{**stack.__dict__, "environment": "staging"})
    with pytest.raises(ConfigErrors, match="Pulumi.staging.yaml: <file>: cannot read"):
        build_under_mocks(renamed, build=lambda _: runpy.run_path(MAIN))
