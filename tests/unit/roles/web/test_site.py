from __future__ import annotations

import pytest

from engine.inventory import Inventory, InventoryError
from roles.web.layout import SiteLayout
from roles.web.site import Limits, sites_on_host, web_site


def test_web_site_prod_villeparisis_reads_inventory(prod):
    s = web_site(prod, "villeparisis")
    assert s.names == ("villeparisis.fr", "www.villeparisis.fr")
    assert s.host == "web-villeparisis"
    assert s.private_ip == "10.20.0.100"
    assert s.proxy_ip == "10.20.0.10"
    assert s.database == "villeparisis"
    assert s.limits == Limits(memory_mb=256, upload_mb=64, execution_s=60)
    assert s.cron_every_minutes == 15
    assert s.admin_networks == ("203.0.113.8/29",)


def test_web_site_credentials_path_comes_from_secret_reference(prod):
    doc = {**prod.doc, "secrets": {
        **prod.doc["secrets"],
        "db_password_participation": {"ref": "host-file:web-participation:/etc/x/db.cnf"}}}
    assert web_site(Inventory.from_doc(doc), "participation").db_credentials == "/etc/x/db.cnf"


def test_web_site_no_secret_reference_uses_the_layouts_path(prod):
    secrets = {k: v for k, v in prod.doc["secrets"].items() if k != "db_password_participation"}
    inv = Inventory.from_doc({**prod.doc, "secrets": secrets})
    assert web_site(inv, "participation").db_credentials == \
        SiteLayout("participation").db_credentials


def test_web_site_unknown_site_raises_naming_the_known_ones(prod):
    with pytest.raises(InventoryError, match="no site 'nosuch'.*villeparisis, participation"):
        web_site(prod, "nosuch")


def test_sites_on_host_one_site_per_web_host(prod):
    assert [s.name for s in sites_on_host(prod, "web-participation")] == ["participation"]
    assert sites_on_host(prod, "proxy") == ()


@pytest.mark.parametrize("execution", [1, 30, 60, 600])
def test_limits_timeouts_outer_layers_wait_longer(execution):
    lim = Limits(256, 64, execution)
    assert (execution < lim.fpm_terminate_s < lim.fastcgi_read_s < lim.proxy_read_s)
