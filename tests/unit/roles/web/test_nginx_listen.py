from __future__ import annotations

from roles.proxy.config import proxy_config
from roles.proxy.render import nginx_conf
from roles.web.nginx_listen import listens


def test_listens_proxy_prod_every_site_ip_on_80_and_443(prod):
    assert listens(nginx_conf(proxy_config(prod))) == [
        "198.51.100.17:443", "198.51.100.17:80", "198.51.100.18:443", "198.51.100.18:80"]


def test_listens_ignores_options_and_comments():
    conf = "  listen 10.0.0.1:443 ssl default_server;\n# listen 1.2.3.4:80;\nlisten [::]:80;\n"
    assert listens(conf) == ["10.0.0.1:443", "[::]:80"]
