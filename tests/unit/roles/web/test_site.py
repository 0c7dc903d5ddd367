from __future__ import annotations

import pytest

from roles.web.site import Limits, sites_on_host, web_site


def test_web_site_prod_villeparisis_reads_inventory(prod_doc):
    s = web_site(prod_doc, "villeparisis")
    assert s.names == ("villeparisis.fr", "www.villeparisis.fr")
    assert s.host == "web-villeparisis"
    assert s.private_ip == "10.20.0.100"
    assert s.proxy_ip == "10.20.0.10"
    assert s.database == "villeparisis"
    assert s.limits == Limits(memory_mb=256, upload_mb=64, execution_s=60)
    assert s.cron_every_minutes == 15
    assert s.admin_networks == ("203.0.113.8/29",)


def test_web_site_credentials_path_comes_from_secret_reference(prod_doc):
    assert web_site(prod_doc, "participation").db_credentials == "/etc/hosting/participation/db.cnf"


def test_web_site_unknown_site_raises(prod_doc):
    with pytest.raises(KeyError, match="nosuch"):
        web_site(prod_doc, "nosuch")


def test_sites_on_host_one_site_per_web_host(prod_doc):
    assert [s.name for s in sites_on_host(prod_doc, "web-participation")] == ["participation"]
    assert sites_on_host(prod_doc, "proxy") == ()


@pytest.mark.parametrize("execution", [1, 30, 60, 600])
def test_limits_timeouts_outer_layers_wait_longer(execution):
    lim = Limits(256, 64, execution)
    assert (execution < lim.fpm_terminate_s < lim.fastcgi_read_s < lim.proxy_read_s)
