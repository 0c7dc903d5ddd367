from __future__ import annotations

import copy

import pytest

from engine.inventory import Inventory
from roles.proxy.config import proxy_config


def test_proxy_config_prod_one_entry_per_site_on_its_own_ip(prod):
    cfg = proxy_config(prod)
    assert [(s.name, s.public_ip, s.backend) for s in cfg.sites] == [
        ("villeparisis", "198.51.100.17", "10.20.0.100"),
        ("participation", "198.51.100.18", "10.20.0.101")]
    assert cfg.sites[0].names == ("villeparisis.fr", "www.villeparisis.fr")
    assert cfg.certificate == "/etc/ssl/hosting/wildcard.villeparisis.fr.pem"


def test_proxy_config_prod_public_and_indexable(prod):
    cfg = proxy_config(prod)
    assert all(s.allow == () and not s.noindex for s in cfg.sites)


def test_proxy_config_preprod_allowlist_and_noindex(preprod):
    cfg = proxy_config(preprod)
    assert all(s.allow == ("203.0.113.8/29",) and s.noindex for s in cfg.sites)


def test_proxy_config_upload_limit_is_the_sites(prod):
    cfg = proxy_config(prod)
    assert [s.limits.upload_mb for s in cfg.sites] == [64, 32]


def test_proxy_config_unlimited_admin_networks_and_own_addresses(prod):
    cfg = proxy_config(prod)
    assert cfg.unlimited == ("203.0.113.8/29", "198.51.100.20/32", "198.51.100.17/32",
                             "198.51.100.18/32", "127.0.0.1/32")


def test_proxy_config_not_indexable_without_allowlist_raises(preprod):
    doc = copy.deepcopy(dict(preprod.doc))
    doc["exposure_allow"] = []
    with pytest.raises(ValueError, match="exposure_allow"):
        proxy_config(Inventory.from_doc(doc))


def test_proxy_config_site_ip_not_on_proxy_raises(prod):
    doc = copy.deepcopy(dict(prod.doc))
    doc["sites"][1]["public_ip"] = "198.51.100.20"
    with pytest.raises(ValueError, match="198.51.100.20 is not routed"):
        proxy_config(Inventory.from_doc(doc))


def test_proxy_config_missing_tls_paths_raises(prod):
    doc = copy.deepcopy(dict(prod.doc))
    doc["tls"] = {}
    with pytest.raises(ValueError, match="tls.certificate"):
        proxy_config(Inventory.from_doc(doc))
