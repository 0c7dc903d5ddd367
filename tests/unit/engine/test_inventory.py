"""Loading the inventory: a file, Pulumi's stack output (a fake `pulumi` on PATH), selection;
the typed sites, their lookups and the secret references."""
from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.inventory import Inventory, InventoryError, SecretRef, load
from model.types import Codebase, Drupal, Php, Tls


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


# --- the typed sites and secret references (issue 12: one typed inventory, each lookup once) --


def _with(prod: Inventory, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(dict(prod.doc))
    change(doc)
    return doc


def test_from_doc_sites_typed_with_the_models_types(prod: Inventory) -> None:
    s = prod.sites[0]
    assert (s.name, s.domain, s.aliases, s.host, s.public_ip, s.database, s.backup_time) == (
        "villeparisis", "villeparisis.fr", ("www.villeparisis.fr",), "web-villeparisis",
        "198.51.100.17", "villeparisis", "03:15")
    assert s.php == Php("8.4", 256, 64, 60) and s.drupal == Drupal("11", 15)
    assert s.codebase == Codebase("git", "https://git.example.org/villeparisis/site.git", "main")
    assert s.db_password == SecretRef("web-villeparisis", "/etc/hosting/villeparisis/db.cnf")
    assert s.names == ("villeparisis.fr", "www.villeparisis.fr")


def test_from_doc_site_headers_typed_and_absent_ones_at_the_models_defaults(
        prod: Inventory) -> None:
    from model.parse import default_headers
    from model.types import Headers

    assert prod.sites[0].headers == default_headers()  # what model.inventory wrote
    doc = copy.deepcopy(prod.doc)
    doc["sites"][0]["headers"] = {"content_security_policy": "default-src 'none'",
                                  "permissions_policy": "camera=()"}
    del doc["sites"][1]["headers"]  # an inventory written before the headers existed
    inv = Inventory.from_doc(doc)
    assert inv.sites[0].headers == Headers("default-src 'none'", "camera=()")
    assert inv.sites[1].headers == default_headers()


def test_site_known_name_returns_it(prod: Inventory) -> None:
    assert prod.site("participation") is prod.sites[1]


def test_site_unknown_name_raises_naming_it_and_the_known_ones(prod: Inventory) -> None:
    with pytest.raises(InventoryError,
                       match=r"no site 'nosuch' in the inventory; sites: villeparisis, "
                             r"participation"):
        prod.site("nosuch")


def test_sites_on_web_host_its_site_other_hosts_none(prod: Inventory) -> None:
    assert [s.name for s in prod.sites_on("web-participation")] == ["participation"]
    assert prod.sites_on("proxy") == ()


@pytest.mark.parametrize("ref,expected", [
    ("host-file:web-a:/etc/hosting/a/db.cnf", SecretRef("web-a", "/etc/hosting/a/db.cnf")),
    ("host-file:web-a:/etc/with:colon", SecretRef("web-a", "/etc/with:colon")),
    ("file:/root/secret", SecretRef("", "/root/secret", "file")),
    ("pulumi-output:dbPassword", SecretRef("", "dbPassword", "pulumi-output")),
])
def test_secret_ref_parse_valid_reference_gives_host_and_path(ref: str,
                                                              expected: SecretRef) -> None:
    parsed = SecretRef.parse(ref, "secrets.x.ref")
    assert parsed == expected and str(parsed) == ref


@pytest.mark.parametrize("ref,why", [
    ("host-file:web-a", "not host-file:<host>:<path>"),
    ("host-file::/etc/x", "not host-file:<host>:<path>"),
    ("host-file:web-a:etc/x", "not host-file:<host>:<path>"),
    ("file:relative", "not file:<path>"),
    ("pulumi-output:", "names nothing"),
    ("vault:x", "no secret reference"),
    ("/etc/x", "no secret reference"),
])
def test_secret_ref_parse_malformed_reference_raises_naming_the_field(ref: str,
                                                                      why: str) -> None:
    with pytest.raises(InventoryError, match=rf"^secrets\.db_password_a\.ref: .*{why}"):
        SecretRef.parse(ref, "secrets.db_password_a.ref")


def test_from_doc_malformed_secret_ref_raises_naming_the_field(prod: Inventory) -> None:
    doc = _with(prod, lambda d: d["secrets"]["db_password_participation"].update(
        ref="host-file:web-participation"))
    with pytest.raises(InventoryError,
                       match=r"secrets\.db_password_participation\.ref: .*host-file:<host>"):
        Inventory.from_doc(doc)


def test_from_doc_secret_on_unknown_host_raises_naming_the_field(prod: Inventory) -> None:
    doc = _with(prod, lambda d: d["secrets"]["db_password_participation"].update(
        ref="host-file:web-nosuch:/etc/x"))
    with pytest.raises(InventoryError, match=r"secrets\.db_password_participation\.ref: "
                                             r"host 'web-nosuch' is not in the inventory"):
        Inventory.from_doc(doc)


def test_from_doc_db_password_on_another_web_host_raises(prod: Inventory) -> None:
    doc = _with(prod, lambda d: d["secrets"]["db_password_participation"].update(
        ref="host-file:web-villeparisis:/etc/x"))
    with pytest.raises(InventoryError, match="on web-villeparisis, but site participation "
                                             "lives on web-participation"):
        Inventory.from_doc(doc)


def test_from_doc_php_limit_not_a_number_raises_naming_the_field(prod: Inventory) -> None:
    doc = _with(prod, lambda d: d["sites"][1]["php"].update(memory_limit_mb="lots"))
    with pytest.raises(InventoryError,
                       match=r"sites\[1\]\.php\.memory_limit_mb: 'lots' is not a number"):
        Inventory.from_doc(doc)


def test_from_doc_drupal_field_missing_raises_naming_the_field(prod: Inventory) -> None:
    doc = _with(prod, lambda d: d["sites"][0]["drupal"].pop("cron_every_minutes"))
    with pytest.raises(InventoryError, match=r"sites\[0\]\.drupal\.cron_every_minutes: missing"):
        Inventory.from_doc(doc)


def test_storage_host_each_tier_its_server_unknown_tier_raises(prod: Inventory) -> None:
    assert (prod.storage_host("a").name, prod.storage_host("b").name) == ("backup-a",
                                                                          "backup-b")
    with pytest.raises(InventoryError, match=r"storage\.c: no such backup tier; tiers: a, b"):
        prod.storage_host("c")


def test_proxy_the_one_proxy_host(prod: Inventory) -> None:
    assert prod.proxy.name == "proxy" and prod.proxy.role == "proxy"


def test_tls_paths_set_typed_missing_none(prod: Inventory) -> None:
    assert prod.tls == Tls("/etc/ssl/hosting/wildcard.villeparisis.fr.pem",
                           "/etc/ssl/hosting/wildcard.villeparisis.fr.key")
    assert Inventory.from_doc(_with(prod, lambda d: d.update(tls={}))).tls is None


def test_backup_policy_only_the_fields_set_timezone_defaults(prod: Inventory) -> None:
    assert prod.backup_policy["weekly_day"] == "sunday"
    doc = _with(prod, lambda d: d.update(backup={"a_keep_days": 9}))
    inv = Inventory.from_doc(doc)
    assert inv.backup_policy == {"a_keep_days": 9}
    assert inv.backup_timezone == "Europe/Paris"


def test_acme_prod_typed_with_the_models_types(prod: Inventory) -> None:
    from model.types import Acme, AcmeCertificate
    acme = prod.acme
    assert isinstance(acme, Acme) and acme.enabled and not acme.lab
    assert acme.certificates == (AcmeCertificate(("villeparisis.fr", "*.villeparisis.fr"),
                                                 "villeparisis.fr"),)


@pytest.mark.parametrize(("acme", "field"), [
    ({"enabled": "yes"}, "acme.enabled"),
    ({"propagation_seconds": True}, "acme.propagation_seconds"),
    ({"certificates": [{"names": "villeparisis.fr"}]}, "acme.certificates[0].names"),
    ({"certificates": [{"names": ["a.fr", 1]}]}, "acme.certificates[0].names[1]"),
    ({"certificates": [{"names": ["a.fr"], "name": 2}]}, "acme.certificates[0].name"),
    ({"certificates": ["a.fr"]}, "acme.certificates[0]"),
    ({"stagin": True}, "acme.stagin"),
])
def test_from_doc_acme_wrong_type_raises_naming_the_field(prod: Inventory, acme: dict,
                                                          field: str) -> None:
    with pytest.raises(InventoryError, match=rf"^{field.replace('[', '.').replace(']', '.')}:"):
        Inventory.from_doc(_with(prod, lambda d: d.update(acme=acme)))


def test_acme_absent_is_none(prod: Inventory) -> None:
    assert Inventory.from_doc(_with(prod, lambda d: d.pop("acme"))).acme is None


def test_from_doc_site_update_typed_and_absent_one_at_the_defaults(prod: Inventory) -> None:
    from model.types import Smoke, UpdatePolicy

    assert prod.sites[0].update == UpdatePolicy()  # what model.inventory wrote
    doc = copy.deepcopy(prod.doc)
    doc["sites"][0]["update"]["smoke"] = [{"path": "/news", "marker": "news"}]
    del doc["sites"][1]["update"]  # an inventory written before fab update existed
    inv = Inventory.from_doc(doc)
    assert inv.sites[0].update.smoke == (Smoke("/news", "news"),)
    assert inv.sites[1].update == UpdatePolicy()


def test_from_doc_site_update_malformed_names_the_field(prod: Inventory) -> None:
    doc = copy.deepcopy(prod.doc)
    doc["sites"][1]["update"] = {"smoke": [{"marker": "x"}]}
    with pytest.raises(InventoryError, match=r"sites\[1\]\.update"):
        Inventory.from_doc(doc)
