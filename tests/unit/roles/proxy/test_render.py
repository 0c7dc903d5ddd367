from __future__ import annotations

import dataclasses
import re

import pytest

from roles.proxy.config import proxy_config
from roles.proxy.render import nginx_conf
from tests.unit.roles.conftest import nginx_version


def _server_blocks(conf: str, ip: str) -> list[str]:
    return [b for b in conf.split("    server {")[1:] if f"listen {ip}:" in b]


def test_nginx_conf_prod_listens_only_on_site_ips(prod):
    conf = nginx_conf(proxy_config(prod))
    listens = set(re.findall(r"listen ([^ ;]+)", conf))
    assert listens == {"198.51.100.17:80", "198.51.100.17:443", "198.51.100.18:80",
                       "198.51.100.18:443"}


def test_nginx_conf_prod_each_ip_serves_only_its_site(prod):
    conf = nginx_conf(proxy_config(prod))
    blocks = _server_blocks(conf, "198.51.100.18")
    names = " ".join(re.findall(r"server_name ([^;]+);", " ".join(blocks)))
    assert "participation.villeparisis.fr" in names and "www.villeparisis.fr" not in names
    # unknown names on the IP: no TLS handshake, no HTTP answer
    assert any("ssl_reject_handshake on" in b for b in blocks)
    assert any("return 444" in b for b in blocks)


def test_nginx_conf_prod_tls_intermediate_hsts_and_headers(prod):
    conf = nginx_conf(proxy_config(prod))
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "server_tokens off;" in conf
    assert 'Strict-Transport-Security "max-age=63072000" always' in conf
    assert "X-Content-Type-Options" in conf and "Referrer-Policy" in conf
    assert "ssl_certificate /etc/ssl/hosting/wildcard.villeparisis.fr.pem;" in conf
    assert "http2 on;" in conf


def test_nginx_conf_prod_http_redirects_except_acme(prod):
    conf = nginx_conf(proxy_config(prod))
    assert conf.count("return 301 https://$host$request_uri;") == 2
    assert conf.count("location ^~ /.well-known/acme-challenge/") == 2


def test_nginx_conf_prod_proxies_to_web_host_with_forwarded_headers(prod):
    conf = nginx_conf(proxy_config(prod))
    assert "server 10.20.0.100:443" in conf and "server 10.20.0.101:443" in conf
    for header in ("X-Forwarded-For $remote_addr", "X-Forwarded-Proto $scheme",
                   "X-Forwarded-Host $host", "Host $host"):
        assert f"proxy_set_header {header};" in conf


def test_nginx_conf_prod_body_limit_is_each_sites_upload_limit(prod):
    conf = nginx_conf(proxy_config(prod))
    assert re.findall(r"client_max_body_size (\S+);", conf) == ["64m", "32m"]


def test_nginx_conf_prod_rate_limit_zone_per_site(prod):
    conf = nginx_conf(proxy_config(prod))
    assert "zone=site_villeparisis:10m" in conf and "zone=site_participation:10m" in conf
    assert "limit_req zone=site_villeparisis burst=40 nodelay;" in conf


def test_nginx_conf_prod_maintenance_page_and_flag(prod):
    conf = nginx_conf(proxy_config(prod))
    assert "error_page 502 503 504 =503 /_hosting_maintenance.html;" in conf
    assert "if (-f /var/lib/hosting/maintenance/villeparisis)" in conf


def test_nginx_conf_prod_indexable_no_robots_header_no_allowlist(prod):
    conf = nginx_conf(proxy_config(prod))
    assert "X-Robots-Tag" not in conf and "deny all;" not in conf


def test_nginx_conf_preprod_noindex_and_allowlist(preprod):
    conf = nginx_conf(proxy_config(preprod))
    assert 'X-Robots-Tag "noindex, nofollow, noarchive" always' in conf
    assert "allow 203.0.113.8/29;" in conf and "deny all;" in conf


def test_nginx_conf_old_nginx_http2_on_listen(prod):
    conf = nginx_conf(proxy_config(prod), nginx_version=(1, 22, 1))
    assert "http2 on;" not in conf and "ssl http2" in conf


def test_nginx_conf_same_inventory_same_bytes(prod):
    assert nginx_conf(proxy_config(prod)) == nginx_conf(proxy_config(prod))


@pytest.mark.parametrize("env", ["prod", "preprod"])
def test_nginx_conf_passes_nginx_t(env, request, nginx_test, test_cert, internal_files,
                                   tmp_path):
    cfg = proxy_config(request.getfixturevalue(env))
    cfg = dataclasses.replace(cfg, certificate=str(test_cert[0]), key=str(test_cert[1]))
    conf = nginx_conf(cfg, internal=internal_files[0],
                      nginx_version=nginx_version() or (1, 26), log_dir=str(tmp_path),
                      pid_file=str(tmp_path / "nginx.pid"))
    proc = nginx_test(conf, tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_nginx_conf_prod_each_site_sends_its_own_csp_and_permissions_policy(prod):
    from model.types import Headers

    custom = Headers("default-src 'self'; img-src 'self' https://tiles.example.org",
                     "camera=(), geolocation=(self)")
    cfg = proxy_config(prod)
    cfg = dataclasses.replace(cfg, sites=(dataclasses.replace(cfg.sites[0], headers=custom),
                                          *cfg.sites[1:]))
    conf = nginx_conf(cfg)
    first = "".join(_server_blocks(conf, cfg.sites[0].public_ip))
    other = "".join(_server_blocks(conf, cfg.sites[1].public_ip))
    assert f'add_header Content-Security-Policy "{custom.content_security_policy}" always;' \
        in first
    assert f'add_header Permissions-Policy "{custom.permissions_policy}" always;' in first
    default = cfg.sites[1].headers
    assert f'add_header Content-Security-Policy "{default.content_security_policy}" always;' \
        in other and custom.content_security_policy not in other


def test_nginx_conf_prod_unknown_methods_refused_at_the_proxy(prod):
    conf = nginx_conf(proxy_config(prod))
    for ip in ("198.51.100.17", "198.51.100.18"):
        site_block = next(b for b in _server_blocks(conf, ip)
                          if f"listen {ip}:443 ssl;" in b and "proxy_pass" in b)
        guard = site_block.index("if ($request_method !~ ^(GET|HEAD|POST|PUT|PATCH|DELETE|"
                                 "OPTIONS)$) {\n            return 405;")
        assert guard < site_block.index("proxy_pass"), ip
