"""Loading the inventory: a file, Pulumi's stack output (a fake `pulumi` on PATH), selection."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.inventory import Inventory, InventoryError, load


@pytest.fixture
def inventory_file(prod: Inventory, tmp_path: Path) -> Path:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(prod.doc))
    return path


def test_load_inventory_file_wins_over_the_environment(inventory_file: Path) -> None:
    inv = load("prod", inventory_file)
    assert inv.bastion.name == "ops" and len(inv.hosts) == 6


def test_load_prod_runs_pulumi_stack_output_with_secrets(inventory_file: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    args = tmp_path / "args"
    fake = bindir / "pulumi"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {args}\ncat {inventory_file}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    inv = load("prod")
    assert args.read_text().split() == ["stack", "output", "inventory", "--show-secrets",
                                        "--json", "-s", "prod"]
    assert inv.environment == "prod"


def test_load_stack_exporting_another_environment_is_refused(
        inventory_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "pulumi"
    fake.write_text(f"#!/bin/sh\ncat {inventory_file}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(InventoryError, match="exported an inventory for 'prod'"):
        load("preprod")


def test_load_invalid_document_names_the_problem(tmp_path: Path, prod: Inventory) -> None:
    bad = {**prod.doc, "hosts": prod.doc["hosts"][:2]}
    path = tmp_path / "inv.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(InventoryError, match="invalid"):
        load("prod", path)


def test_load_unknown_environment_is_refused() -> None:
    with pytest.raises(InventoryError, match="unknown environment"):
        load("staging")


def test_select_by_names_and_role(prod: Inventory) -> None:
    assert [h.name for h in prod.select()] == [h.name for h in prod.hosts]
    assert [h.name for h in prod.select("ops, proxy")] == ["proxy", "ops"]
    assert [h.name for h in prod.select(role="web")] == ["web-villeparisis", "web-participation"]
    assert [h.name for h in prod.select("ops,web-participation", "web")] == [
        "web-participation"]


def test_select_unknown_host_or_role_is_an_error_not_nothing(prod: Inventory) -> None:
    with pytest.raises(InventoryError, match="no host 'webb'"):
        prod.select("webb")
    with pytest.raises(InventoryError, match="no host has role 'db'"):
        prod.select(role="db")


def test_principals_for_role_from_the_model(prod: Inventory) -> None:
    assert prod.principals_for("storage") == ("sysadmin", "ci-deploy")
    assert prod.principals["sysadmin"] == ("proxy", "web", "ops", "storage")
