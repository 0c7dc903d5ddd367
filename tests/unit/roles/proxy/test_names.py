from __future__ import annotations

import pytest

from roles.proxy.names import certificate_names, covers, uncovered


@pytest.mark.parametrize("pattern,name,ok", [
    ("*.villeparisis.fr", "participation.villeparisis.fr", True),
    ("*.villeparisis.fr", "www.villeparisis.fr", True),
    ("*.villeparisis.fr", "villeparisis.fr", False),
    ("*.villeparisis.fr", "participation.preprod.villeparisis.fr", False),
    ("villeparisis.fr", "VILLEPARISIS.fr.", True),
    ("*.villeparisis.fr", ".villeparisis.fr", False),
])
def test_covers_wildcard_is_one_label(pattern, name, ok):
    assert covers(pattern, name) is ok


def test_certificate_names_prod_wildcard_of_parent_domain():
    assert certificate_names(["villeparisis.fr", "www.villeparisis.fr",
                              "participation.villeparisis.fr"]) == (
        "*.villeparisis.fr", "villeparisis.fr")


def test_certificate_names_preprod_wildcard_of_preprod_domain():
    assert certificate_names(["preprod.villeparisis.fr", "www.preprod.villeparisis.fr",
                              "participation.preprod.villeparisis.fr"]) == (
        "*.preprod.villeparisis.fr", "preprod.villeparisis.fr")


def test_certificate_names_unrelated_domains_listed_one_by_one():
    assert certificate_names(["a.example", "b.test"]) == ("a.example", "b.test")


def test_certificate_names_deep_name_added_explicitly():
    names = certificate_names(["villeparisis.fr", "a.b.villeparisis.fr"])
    assert "a.b.villeparisis.fr" in names and "*.villeparisis.fr" in names


def test_uncovered_lists_names_outside_sans():
    assert uncovered(["*.villeparisis.fr"], ["villeparisis.fr", "www.villeparisis.fr"]) == [
        "villeparisis.fr"]
