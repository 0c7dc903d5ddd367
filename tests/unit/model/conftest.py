from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def prod_doc() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())


@pytest.fixture
def mutated(prod_doc: dict[str, Any]) -> Callable[[Callable[[dict], None]], str]:
    """Return the prod stack's YAML text after `change(config)` edited a deep copy of it."""
    def make(change: Callable[[dict], None]) -> str:
        doc = copy.deepcopy(prod_doc)
        change(doc["config"])
        return yaml.safe_dump(doc, sort_keys=False)
    return make
